package callback

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
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
}

var pageTemplate = template.Must(template.New("result").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;padding:2rem 1rem;color:#1a1a1a;background:#f6f7f9}
main{max-width:28rem;margin:0 auto;background:#fff;border-radius:8px;padding:2rem;box-shadow:0 1px 3px rgba(0,0,0,.1)}
img{max-width:64px;max-height:64px}
h1{font-size:1.4rem}
.ref{color:#555;font-size:.85rem}
</style>
</head>
<body>
<main>
{{if .Logo}}<img src="{{.Logo}}" alt="">{{end}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .RequestID}}<p class="ref">Reference: {{.RequestID}}</p>{{end}}
</main>
</body>
</html>
`))

func renderPage(c echo.Context, r resultPage) error {
	data := struct {
		Title, Message, Logo, RequestID string
	}{Logo: r.Config.LogoURL, RequestID: httpapi.RequestID(c)}
	if data.Logo == "" {
		data.Logo = r.App.LogoURL
	}
	status := http.StatusOK
	name := r.App.Name
	if name == "" {
		name = "the app"
	}
	if r.Problem == nil {
		data.Title = "Connected"
		data.Message = "Your account is now connected to " + name + ". You can close this window."
	} else {
		data.Title = "Not connected"
		var e *errs.Error
		if errors.As(r.Problem, &e) && e.Code != errs.Internal {
			data.Message = e.Message
			status = httpapi.Status(e.Code)
		} else {
			data.Message = "Something went wrong on our side. Try again later."
			status = http.StatusInternalServerError
		}
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, data); err != nil {
		return err
	}
	h := c.Response().Header()
	// No script, no third-party content: the page needs neither.
	h.Set("Content-Security-Policy", "default-src 'none'; img-src https: http:; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	return c.HTMLBlob(status, buf.Bytes())
}
