package callback

import (
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/webpage"
	"github.com/latchkey/latchkey/oauthconfig"
)

// resultPage is what the end user is told at the end of a flow.
type resultPage struct {
	App            app.App
	Config         oauthconfig.Config
	ReturnURL      string
	InstallationID string
	UserID         string
	ProviderError  string
	Problem        error // nil: connected

	// Reference finds the failure later: the id of the token request's
	// entry in the request log when one was recorded, else the request id.
	Reference string
	// RetryURL is a fresh connect link to try again, or "".
	RetryURL string
}

var resultTemplate = webpage.Parse("result", `
<h1>{{.Title}}</h1>
<p class="status {{if .OK}}ok{{else}}bad{{end}}">{{.Lead}}</p>
{{if .Detail}}<p>{{.Detail}}</p>{{end}}
{{if .Reference}}<p class="ref">Reference: <code id="reference">{{.Reference}}</code><br>If this keeps happening, give this reference to {{.Support}}.</p>{{end}}
{{if .RetryURL}}<div class="actions"><a class="button" id="retry" href="{{.RetryURL}}">Try again</a></div>{{end}}
{{if .OK}}<p class="muted">You can close this window.</p>{{end}}
`)

// renderPage says what happened in plain words: connected; access denied;
// the provider failed (with a reference to find the request log entry);
// or why the flow could not go on.
func renderPage(c echo.Context, r resultPage) error {
	logo := r.Config.LogoURL
	if logo == "" {
		logo = r.App.LogoURL
	}
	name := r.App.Name
	if name == "" {
		name = "the app"
	}
	data := struct {
		OK                                                bool
		Title, Lead, Detail, Reference, RetryURL, Support string
	}{RetryURL: r.RetryURL, Support: name + "'s support"}
	if r.App.Name == "" {
		data.Support = "the app's support"
	}
	status := http.StatusOK
	var e *errs.Error
	switch {
	case r.Problem == nil:
		data.OK = true
		data.Title = "Connected"
		data.Lead = "Your account is now connected to " + name + "."
	case r.ProviderError == "access_denied":
		status = http.StatusForbidden
		data.Title = "Access denied"
		data.Lead = "You did not allow " + name + " to access your account, so nothing was connected."
		data.Detail = "If that was a mistake, try again and choose to allow access."
	case errors.As(r.Problem, &e) && (e.Code == errs.Upstream || e.Code == errs.Timeout):
		status = httpapi.Status(e.Code)
		data.Title = "The provider failed"
		data.Lead = "Signing in at the provider did not work, so your account is not connected."
		data.Detail = "What went wrong: " + strings.TrimSuffix(e.Message, ".") + "."
		data.Reference = r.Reference
	case errors.As(r.Problem, &e) && e.Code != errs.Internal:
		status = httpapi.Status(e.Code)
		data.Title = "Not connected"
		data.Lead = sentence(e.Message)
		data.Reference = r.Reference
	default:
		status = http.StatusInternalServerError
		data.Title = "Not connected"
		data.Lead = "Something went wrong on our side, so your account is not connected. Try again later."
		data.Reference = r.Reference
	}
	if data.Reference == "" && r.Problem != nil && r.ProviderError != "access_denied" {
		data.Reference = httpapi.RequestID(c)
	}
	title := data.Title
	if r.App.Name != "" {
		title += " · " + r.App.Name
	}
	return webpage.Render(c, resultTemplate, webpage.Page{
		Status: status, Title: title, Heading: r.App.Name, Logo: logo, Body: data,
	})
}

// sentence makes an error message (written lowercase, for the API) read as
// a sentence on a page.
func sentence(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
