package openapitest

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// fromYAML turns a YAML document into the JSON value it stands for (maps,
// slices, strings, json.Number, bools and nil), which is what both JSON
// schemas and the OpenAPI document model are written against. YAML that
// has no JSON form is an error: OpenAPI documents must be representable as
// JSON (OpenAPI 3.1 §4.3), so a key like an unquoted 200 is refused rather
// than guessed at.
func fromYAML(data []byte) (any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	return jsonValue(&doc, "", 0)
}

func jsonValue(n *yaml.Node, ptr string, depth int) (any, error) {
	if depth > 200 { // aliases can make a document refer to itself
		return nil, fmt.Errorf("%s: nested too deeply", where(ptr))
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, fmt.Errorf("empty document")
		}
		return jsonValue(n.Content[0], ptr, depth+1)
	case yaml.AliasNode:
		return jsonValue(n.Alias, ptr, depth+1)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
				return nil, fmt.Errorf("line %d: key %q in %s is not a string; quote it", k.Line, k.Value, where(ptr))
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: key %q repeated in %s", k.Line, k.Value, where(ptr))
			}
			val, err := jsonValue(v, ptr+"/"+escapeToken(k.Value), depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = val
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			val, err := jsonValue(c, ptr+"/"+strconv.Itoa(i), depth+1)
			if err != nil {
				return nil, err
			}
			s[i] = val
		}
		return s, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str", "!!timestamp": // an unquoted date is a string in JSON
			return n.Value, nil
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			err := n.Decode(&b)
			return b, err
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				return nil, fmt.Errorf("line %d: %v", n.Line, err)
			}
			return json.Number(strconv.FormatInt(i, 10)), nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, fmt.Errorf("line %d: %v", n.Line, err)
			}
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, fmt.Errorf("line %d: %s is not a JSON number", n.Line, n.Value)
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
		}
		return nil, fmt.Errorf("line %d: %s value %q has no JSON form", n.Line, n.ShortTag(), n.Value)
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

// where names a JSON pointer in messages.
func where(ptr string) string {
	if ptr == "" {
		return "the document"
	}
	return "#" + ptr
}
