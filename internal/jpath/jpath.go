// Package jpath compiles the JSONPaths that configs and webhook sources
// name (PaesslerAG/jsonpath), once each: they are few and evaluated on
// every answer they apply to.
package jpath

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/PaesslerAG/gval"
	"github.com/PaesslerAG/jsonpath"
)

// compiled caches compiled paths. It is bounded so that callers sending
// endless distinct paths cannot grow it without end.
var (
	compiled sync.Map // string -> gval.Evaluable
	count    atomic.Int64
)

// Compile compiles a JSONPath, which must start at the root ($) and be at
// most 500 characters. Its errors are phrased to follow a field's name.
func Compile(path string) (gval.Evaluable, error) {
	if e, ok := compiled.Load(path); ok {
		return e.(gval.Evaluable), nil
	}
	if !strings.HasPrefix(path, "$") {
		return nil, fmt.Errorf("must be a JSONPath starting with $")
	}
	if len(path) > 500 {
		return nil, fmt.Errorf("must be at most 500 characters")
	}
	eval, err := jsonpath.New(path)
	if err != nil {
		return nil, fmt.Errorf("is not a valid JSONPath: %v", err)
	}
	if count.Load() < 10000 {
		if _, loaded := compiled.LoadOrStore(path, eval); !loaded {
			count.Add(1)
		}
	}
	return eval, nil
}
