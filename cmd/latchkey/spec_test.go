package main

import (
	"regexp"
	"sort"
	"strings"
	"testing"
)

var echoParam = regexp.MustCompile(`:([a-z_]+)`)

// TestSpecListsEveryRoute keeps openapi.yaml and the router in step: every
// route the server registers is in the spec, and the spec has no other.
func TestSpecListsEveryRoute(t *testing.T) {
	e := newEnv(t)
	served := map[string]bool{}
	for _, r := range e.echo.Routes() {
		if r.Method == "echo_route_not_found" || strings.HasSuffix(r.Path, "/*") {
			continue
		}
		served[r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}")] = true
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
