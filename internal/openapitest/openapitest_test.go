package openapitest

import (
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
)

const petID = "0190a5f2-7c3e-7d4a-9b1e-2f3c4d5e6f70"

func mustLoad(t *testing.T) *Spec {
	t.Helper()
	s, err := Load("testdata/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// request makes a request to the shop's server, with a bearer token unless
// header says otherwise (an "Authorization" of "" for none).
func request(method, path, body string, header ...string) (*http.Request, []byte) {
	r, err := http.NewRequest(method, "https://shop.example/api"+path, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	r.Header.Set("Authorization", "Bearer t0ken")
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			r.Header.Del(header[i])
		} else {
			r.Header.Set(header[i], header[i+1])
		}
	}
	return r, []byte(body)
}

func TestCheckRequest(t *testing.T) {
	s := mustLoad(t)
	tests := []struct {
		name         string
		method, path string
		body         string
		header       []string
		want         string // a part of the error; "" for none
	}{
		{"ok", "GET", "/pets?limit=10", "", nil, ""},
		{"unknown path", "GET", "/cats", "", nil, "route: no path of the document matches"},
		{"path outside the server's base", "GET", "/../pets?limit=1", "", nil, "route: no path"},
		{"wrong method", "PUT", "/pets", "", nil, "route: /pets has no PUT operation"},
		{"HEAD is GET", "HEAD", "/pets?limit=1", "", nil, ""},
		{"literal path before template", "GET", "/pets/mine", "", nil, ""},

		{"missing required query parameter", "GET", "/pets", "", nil, `query parameter "limit": missing; it is required`},
		{"query parameter not an integer", "GET", "/pets?limit=ten", "", nil, `query parameter "limit": got string, want integer`},
		{"query parameter out of range", "GET", "/pets?limit=101", "", nil, `query parameter "limit": maximum: got 101, want 100 (#/paths/~1pets/get/parameters/0/schema/maximum)`},
		{"query parameter not percent-encoded", "GET", "/pets?limit=1&tag=c:t", "", nil, `query parameter "tag": "c:t" has reserved characters`},
		{"query array", "GET", "/pets?limit=1&tag=cat&tag=dog", "", nil, ""},
		{"query array item", "GET", "/pets?limit=1&tag=cow", "", nil, `query parameter "tag" /0: value must be one of`},
		{"query array length", "GET", "/pets?limit=1&tag=cat&tag=dog&tag=fish", "", nil, `query parameter "tag": maxItems`},
		{"undeclared query parameter", "GET", "/pets?limit=1&sort=name", "", nil, ""},
		{"header parameter", "GET", "/pets?limit=1", "", []string{"X-Trace", "toolong"}, `header parameter "X-Trace": maxLength: got 7, want 4 (#/components/parameters/Trace/schema/maxLength)`},

		{"path parameter", "GET", "/pets/" + petID, "", nil, ""},
		{"path parameter against its pattern", "GET", "/pets/NOT_ID", "", nil, `path parameter "pet": 'NOT_ID' does not match pattern`},
		{"format is an annotation", "GET", "/pets/not-a-uuid", "", nil, ""},
		{"empty path parameter", "PUT", "/pets//photo", "\x89PNG", []string{"Content-Type", "image/png"}, `path parameter "pet": empty`},
		{"percent-encoded path parameter", "GET", "/pets/a%2Db", "", nil, ""},

		{"no credentials", "GET", "/pets?limit=1", "", []string{"Authorization", ""}, "security: token: no Authorization header"},
		{"other scheme", "GET", "/pets?limit=1", "", []string{"Authorization", "Basic eDp5"}, "security: token: Authorization is not bearer"},
		{"scheme in another case", "GET", "/pets?limit=1", "", []string{"Authorization", "BEARER t0ken"}, ""},
		{"public route", "GET", "/health", "", []string{"Authorization", ""}, ""},
		{"API key", "POST", "/notes", "hello", []string{"Content-Type", "text/plain", "X-Key", "k"}, ""},
		{"no API key", "POST", "/notes", "hello", []string{"Content-Type", "text/plain"}, "security: key: no X-Key header"},

		{"JSON body", "POST", "/pets", `{"name":"Rex","tag":null}`, nil, ""},
		{"JSON body with charset", "POST", "/pets", `{"name":"Rex"}`, []string{"Content-Type", "application/json; charset=utf-8"}, ""},
		{"bad JSON", "POST", "/pets", `{"name":`, nil, "request body: not JSON"},
		{"two JSON values", "POST", "/pets", `{"name":"a"} {}`, nil, "request body: not JSON"},
		{"JSON body against its schema", "POST", "/pets", `{"name":"Rex","age":3}`, nil, "request body: additional properties 'age' not allowed (#/components/schemas/NewPet/additionalProperties)"},
		{"JSON field against its schema", "POST", "/pets", `{"name":""}`, nil, "request body /name: minLength: got 0, want 1 (#/components/schemas/NewPet/properties/name/minLength)"},
		{"JSON field of two types", "POST", "/pets", `{"name":"Rex","tag":7}`, nil, "request body /tag: got number, want null or string"},
		{"required body missing", "POST", "/pets", "", nil, "request body: missing; it is required"},
		{"optional body missing", "PATCH", "/pets/" + petID, "", nil, ""},
		{"undeclared body", "DELETE", "/pets/" + petID, `{}`, nil, "request body: 2 bytes, but the operation declares no request body"},
		{"body without Content-Type", "POST", "/pets", `{"name":"Rex"}`, []string{"Content-Type", ""}, "request body: sent without a Content-Type"},
		{"undeclared Content-Type", "POST", "/pets", `name=Rex`, []string{"Content-Type", "application/x-www-form-urlencoded"}, "request body: Content-Type application/x-www-form-urlencoded is not declared; declared: application/json"},
		{"media range", "PUT", "/pets/" + petID + "/photo", "\x89PNG", []string{"Content-Type", "image/png"}, ""},
		{"media range not matched", "PUT", "/pets/" + petID + "/photo", "%PDF", []string{"Content-Type", "application/pdf"}, "Content-Type application/pdf is not declared; declared: image/*"},

		{"form", "POST", "/orders", "pet=rex&count=2&gift=true", []string{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}, ""},
		{"form field not an integer", "POST", "/orders", "pet=rex&count=two", []string{"Content-Type", "application/x-www-form-urlencoded"}, "request body /count: got string, want integer"},
		{"form field out of range", "POST", "/orders", "pet=rex&count=0", []string{"Content-Type", "application/x-www-form-urlencoded"}, "request body /count: minimum: got 0, want 1"},
		{"form field not a boolean", "POST", "/orders", "pet=rex&gift=yes", []string{"Content-Type", "application/x-www-form-urlencoded"}, "request body /gift: got string, want boolean"},
		{"form field missing", "POST", "/orders", "count=2", []string{"Content-Type", "application/x-www-form-urlencoded"}, "request body: missing property 'pet'"},
		{"form field sent twice", "POST", "/orders", "pet=a&pet=b", []string{"Content-Type", "application/x-www-form-urlencoded"}, "request body /pet: got array, want string"},
		{"unknown form field", "POST", "/orders", "pet=a&note=x", []string{"Content-Type", "application/x-www-form-urlencoded"}, "additional properties 'note' not allowed"},
		{"form that does not parse", "POST", "/orders", "pet=%zz", []string{"Content-Type", "application/x-www-form-urlencoded"}, "request body: not a form"},

		{"text body", "POST", "/notes", "0123456789", []string{"Content-Type", "text/plain", "X-Key", "k"}, ""},
		{"text body too long", "POST", "/notes", "0123456789x", []string{"Content-Type", "text/plain", "X-Key", "k"}, "request body: maxLength: got 11, want 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, body := request(tt.method, tt.path, tt.body, tt.header...)
			err := s.CheckRequest(r, body)
			checkErr(t, err, tt.want)
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("got %v, want no error", err)
	case want != "" && err == nil:
		t.Errorf("got no error, want %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("got %v\nwant it to contain %q", err, want)
	}
}

func TestCheckResponse(t *testing.T) {
	s := mustLoad(t)
	pet := `{"id":"` + petID + `","name":"Rex","tag":"dog"}`
	tests := []struct {
		name         string
		method, path string
		status       int
		header       []string
		body         string
		want         string
	}{
		{"ok", "GET", "/pets/" + petID, 200, []string{"Content-Type", "application/json"}, pet, ""},
		{"null in a type list", "GET", "/pets/" + petID, 200, []string{"Content-Type", "application/json"}, `{"id":"x","name":"Rex","tag":null,"born":"someday"}`, ""},
		{"unknown route", "GET", "/cats", 404, nil, "{}", "route: no path of the document matches"},
		{"undeclared status", "GET", "/pets/" + petID, 500, []string{"Content-Type", "application/problem+json"}, `{"title":"x","status":500}`, "status: 500 is not declared"},
		{"status range", "GET", "/pets?limit=1", 418, []string{"Content-Type", "application/problem+json"}, `{"title":"teapot","status":418}`, ""},
		{"outside the status range", "GET", "/pets?limit=1", 503, []string{"Content-Type", "application/problem+json"}, `{"title":"x","status":503}`, "status: 503 is not declared"},
		{"default", "POST", "/pets", 503, []string{"Content-Type", "application/problem+json"}, `{"title":"x","status":503}`, ""},
		{"problem document", "POST", "/pets", 409, []string{"Content-Type", "application/problem+json"}, `{"title":"x"}`, "response body: missing property 'status' (#/components/schemas/Problem/required)"},
		{"wrong Content-Type", "GET", "/pets/" + petID, 200, []string{"Content-Type", "text/html"}, pet, "response body: Content-Type text/html is not declared; declared: application/json"},
		{"no Content-Type", "GET", "/pets/" + petID, 200, nil, pet, "response body: no Content-Type; declared: application/json"},
		{"problem+json is not json", "GET", "/pets/" + petID, 200, []string{"Content-Type", "application/problem+json"}, pet, "Content-Type application/problem+json is not declared"},
		{"body against its schema", "GET", "/pets/" + petID, 200, []string{"Content-Type", "application/json"}, `{"id":"x","name":"Rex","tag":"cow"}`, "response body /tag: value must be one of"},
		{"property not declared", "GET", "/pets/" + petID, 200, []string{"Content-Type", "application/json"}, `{"id":"x","name":"Rex","tag":null,"age":3}`, "response body: additional properties 'age' not allowed"},
		{"item against its schema", "GET", "/pets?limit=1", 200, []string{"Content-Type", "application/json"}, `[` + pet + `,{"id":"y","name":7,"tag":null}]`, "response body /1/name: got number, want string"},
		{"empty body declared JSON", "GET", "/pets/" + petID, 200, []string{"Content-Type", "application/json"}, "", "response body: empty, but declared as application/json"},
		{"not JSON", "GET", "/pets/" + petID, 200, []string{"Content-Type", "application/json"}, "<html>", "response body: not JSON"},
		{"HEAD has no body", "HEAD", "/pets/" + petID, 200, []string{"Content-Type", "application/json"}, "", ""},
		{"no content", "DELETE", "/pets/" + petID, 204, nil, "", ""},
		{"body where no content is declared", "DELETE", "/pets/" + petID, 204, nil, "{}", "response body: 2 bytes, but the response declares no content"},
		{"redirect", "POST", "/orders", 303, []string{"Location", "/orders/1"}, "", ""},
		{"text", "GET", "/health", 200, []string{"Content-Type", "text/plain; charset=utf-8", "Cache-Control", "no-store"}, "ok", ""},
		{"text against its schema", "GET", "/health", 200, []string{"Content-Type", "text/plain", "Cache-Control", "no-store"}, "very well indeed", "response body: maxLength: got 16, want 8"},
		{"required header missing", "GET", "/health", 200, []string{"Content-Type", "text/plain"}, "ok", `response header "Cache-Control": missing; it is required`},
		{"header against its schema", "GET", "/health", 200, []string{"Content-Type", "text/plain", "Cache-Control", "no-cache"}, "ok", `response header "Cache-Control": value must be 'no-store'`},
		{"optional header", "POST", "/pets", 201, []string{"Content-Type", "application/json"}, pet, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := request(tt.method, tt.path, "")
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
			for i := 0; i+1 < len(tt.header); i += 2 {
				resp.Header.Set(tt.header[i], tt.header[i+1])
			}
			checkErr(t, s.CheckResponse(r, resp, []byte(tt.body)), tt.want)
		})
	}
}

func TestCheckSchema(t *testing.T) {
	s := mustLoad(t)
	for _, tt := range []struct {
		name, schema, body, want string
	}{
		{"ok", "Pet", `{"id":"x","name":"Rex","tag":"dog"}`, ""},
		{"against the schema", "Pet", `{"id":"x","name":"Rex"}`, "body: missing property 'tag'"},
		{"property not declared", "Pet", `{"id":"x","name":"Rex","tag":null,"age":3}`, "body: additional properties 'age' not allowed"},
		{"not JSON", "Pet", `{"id":`, "body: not JSON"},
		{"no such schema", "Cat", `{}`, `no schema "Cat"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, s.CheckSchema(tt.schema, []byte(tt.body)), tt.want)
		})
	}
}

func TestUnknownRoute(t *testing.T) {
	s := mustLoad(t)
	for _, path := range []string{"/cats", "/pets/mine/photo"} {
		r, _ := request("GET", path, "")
		if err := s.CheckRequest(r, nil); !errors.Is(err, ErrUnknownRoute) {
			t.Errorf("GET %s: got %v, want ErrUnknownRoute", path, err)
		}
	}
	r, _ := request("PUT", "/pets", "")
	if err := s.CheckResponse(r, &http.Response{StatusCode: 405}, nil); !errors.Is(err, ErrUnknownRoute) {
		t.Errorf("PUT /pets: got %v, want ErrUnknownRoute", err)
	}
	// A route that is in the document is not unknown for other failures.
	r, _ = request("GET", "/pets", "")
	if err := s.CheckRequest(r, nil); err == nil || errors.Is(err, ErrUnknownRoute) {
		t.Errorf("GET /pets without limit: got %v, want an error that is not ErrUnknownRoute", err)
	}
}

func TestErrorMessage(t *testing.T) {
	s := mustLoad(t)
	r, body := request("POST", "/pets", `{"name":"","age":3}`, "Authorization", "")
	err := s.CheckRequest(r, body)
	want := `POST /api/pets:
  - security: token: no Authorization header
  - request body: additional properties 'age' not allowed (#/components/schemas/NewPet/additionalProperties)
  - request body /name: minLength: got 0, want 1 (#/components/schemas/NewPet/properties/name/minLength)`
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != 3 || e.Problems[2].Pointer != "/name" {
		t.Errorf("got %#v", err)
	}
}

func TestRoutes(t *testing.T) {
	var names []string
	for _, r := range mustLoad(t).Routes() {
		names = append(names, r.Method+" "+r.Path)
	}
	wantNames := []string{
		"GET /health", "POST /notes", "POST /orders", "GET /pets", "POST /pets", "GET /pets/mine",
		"DELETE /pets/{pet}", "GET /pets/{pet}", "PATCH /pets/{pet}", "PUT /pets/{pet}/photo",
	}
	if !slices.Equal(names, wantNames) {
		t.Errorf("got %q\nwant %q", names, wantNames)
	}
}

// TestParse checks that documents that are not sound, or that need what
// this package does not check, are refused.
func TestParse(t *testing.T) {
	shop, err := os.ReadFile("testdata/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		old, new string // a change to shop.yaml
		want     string
	}{
		{"not OpenAPI 3.1", "openapi: 3.1.0", "openapi: 3.0.3", "only OpenAPI 3.1"},
		{"not YAML", "paths:\n", "paths: [\n", "yaml"},
		{"unquoted status", "        '204':\n          description: Deleted", "        204:\n          description: Deleted", `key "204" in #/paths/~1pets~1{pet}/delete/responses is not a string`},
		{"unknown field", "    get:\n      security: []", "    get:\n      secure: true\n      security: []", "not a valid OpenAPI 3.1 document:\n#/paths/~1health/get/secure: not allowed"},
		{"$ref that does not resolve", "$ref: '#/components/parameters/Trace'", "$ref: '#/components/parameters/Tracing'", `$ref "#/components/parameters/Tracing": no such value`},
		{"schema $ref that does not resolve", "$ref: '#/components/schemas/Date'", "$ref: '#/components/schemas/Day'", "#/components/schemas/Pet"},
		{"external $ref", "$ref: '#/components/schemas/Date'", "$ref: 'common.yaml#/Date'", "common.yaml"},
		{"schema that does not compile", "pattern: '^[0-9a-z-]+$'", "pattern: '^[0-9a-z-+$'", "#/components/parameters/PetID/schema"},
		{"nullable", "        born:\n", "        nick:\n          type: string\n          nullable: true\n        born:\n", "nullable is not OpenAPI 3.1"},
		{"readOnly", "        born:\n", "        nick:\n          type: string\n          readOnly: true\n        born:\n", "readOnly is not supported"},
		{"undeclared path parameter", "  /pets/mine:", "  /pets/{owner}/mine:", `path parameter "owner" is not declared`},
		{"path parameter not in the path", "  /pets/{pet}/photo:", "  /pets/{id}/photo:", `path parameter "pet" is not in the path`},
		{"cookie parameter", "name: X-Trace\n      in: header", "name: X-Trace\n      in: cookie", "parameters in cookie are not supported"},
		{"parameter style", "        - name: tag\n", "        - name: tag\n          style: pipeDelimited\n", "only the default style"},
		{"object parameter", "            type: integer\n            minimum: 1\n            maximum: 100", "            type: object", "none objects"},
		{"other security scheme", "  securitySchemes:\n", "  securitySchemes:\n    oidc:\n      type: openIdConnect\n      openIdConnectUrl: https://x.example\n", "security schemes of type openIdConnect are not supported"},
		{"unknown security scheme", "        - key: []", "        - keys: []", `no security scheme "keys"`},
		{"schema for a body that cannot be read", "          image/*: {}", "          image/*:\n            schema:\n              type: string", "bodies of this type cannot be checked"},
		{"encoding", "              additionalProperties: false\n", "              additionalProperties: false\n            encoding:\n              pet:\n                contentType: text/plain\n", "encoding: not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(string(shop), tt.old, tt.new, 1)
			if doc == string(shop) {
				t.Fatalf("%q is not in shop.yaml", tt.old)
			}
			_, err := Parse([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v\nwant an error with %q", err, tt.want)
			}
		})
	}
}
