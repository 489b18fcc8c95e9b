package token

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey/internal/redact"
	"github.com/latchkey/latchkey/internal/template"
)

// pathFor renders a mapping's JSONPath that names settings, as in
// $[?(@.url == "<<site_url>>")].id, which picks the entry of a list that
// belongs to the installation. Each value is escaped for the string
// literal it sits in, so it can only ever be compared, never change the
// path.
func pathFor(path string, vars Vars) (string, error) {
	if !strings.Contains(path, "<<") {
		return path, nil
	}
	t, err := template.Cached(path, template.Text)
	if err != nil {
		return "", err
	}
	quoted := make(map[string]string, len(t.Vars()))
	for _, name := range t.Vars() {
		if v := vars.Values[name]; v != "" {
			q := strconv.Quote(v)
			quoted[name] = q[1 : len(q)-1]
		}
	}
	out, err := t.Render(quoted)
	if err != nil {
		var missing *template.MissingError
		if errors.As(err, &missing) {
			return "", fmt.Errorf("<<%s>> has no value for this installation and user", missing.Name)
		}
		return "", err
	}
	return out, nil
}

// excerpt is the start of a provider's answer for an error message, with
// secrets removed: enough to tell "token revoked" from "wrong URL".
func excerpt(r *redact.Redactor, body []byte) string {
	s := strings.Join(strings.Fields(r.Body(body)), " ")
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return ": " + s
}
