package main

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

var echoParam = regexp.MustCompile(`:([a-z_]+)`)

// specPath writes an Echo route path as openapi.yaml does: ":name" becomes
// "{name}", and a trailing "/*", which matches the rest of the path
// (slashes included), becomes "/{path}".
func specPath(echoPath string) string {
	p := echoParam.ReplaceAllString(echoPath, "{$1}")
	if rest, ok := strings.CutSuffix(p, "/*"); ok {
		p = rest + "/{path}"
	}
	return p
}

// TestSpecListsEveryRoute keeps openapi.yaml and the router in step: every
// route the server registers is in the spec, and the spec has no other.
func TestSpecListsEveryRoute(t *testing.T) {
	e := newEnv(t)
	served := map[string]bool{}
	for _, r := range e.echo.Routes() {
		// Echo's own "route not found" handlers (one per group, at "" and
		// "/*") are not routes of the API.
		if r.Method == echo.RouteNotFound {
			continue
		}
		if strings.Contains(r.Path, "*") && !strings.HasSuffix(r.Path, "/*") {
			t.Errorf("%s %s: a wildcard openapi.yaml cannot describe", r.Method, r.Path)
			continue
		}
		served[r.Method+" "+specPath(r.Path)] = true
	}
	_, doc := loadSpec(t)
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	specified := map[string]bool{}
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			specified[strings.ToUpper(method)+" "+path] = true
		}
	}
	for _, r := range sorted(served) {
		if !specified[r] {
			t.Errorf("%s is served but not in openapi.yaml", r)
		}
	}
	for _, r := range sorted(specified) {
		if !served[r] {
			t.Errorf("%s is in openapi.yaml but not served", r)
		}
	}
}

func sorted(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
