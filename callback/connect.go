package callback

import (
	"context"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/webpage"
)

// Paths of the end user's pages. A link token follows each.
const (
	// AuthorizePath redirects straight to the provider.
	AuthorizePath = "/oauth/authorize/"
	// ConnectPath shows what the app will access first, with a button
	// that goes on to AuthorizePath with the same token.
	ConnectPath = "/connect/"
)

// ConnectLink makes a connect link (a page in front of an authorize link)
// for an installation, config and user, for pages that offer the next step
// (the install page) or another try (the result page). It returns the URL
// and when it stops working; errors are the store's.
func (h *Handler) ConnectLink(ctx context.Context, installationID, configID, userID string) (string, time.Time, error) {
	l := Link{InstallationID: installationID, ConfigID: configID, UserID: userID}
	token, err := h.store.CreateLink(ctx, &l)
	if err != nil {
		return "", time.Time{}, err
	}
	return h.publicURL + ConnectPath + token, l.ExpiresAt, nil
}

var connectTemplate = webpage.Parse("connect", `
<h1>Connect your account</h1>
<p>{{.App}} asks for access to your {{if .Config}}<strong>{{.Config}}</strong> {{end}}account. You will sign in there and choose whether to allow it.</p>
{{if .Scopes}}<h2 id="scopes">{{.App}} will be able to use</h2>
<ul class="scopes" aria-labelledby="scopes">{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>
{{else}}<p class="muted">{{.App}} asks for no particular permissions.</p>{{end}}
<div class="actions"><a class="button" id="connect" href="{{.Start}}">Continue to sign in</a></div>
<p class="muted">This link works until {{.Expires}}.</p>
`)

// connect is the connect page: the app's logo and name, the scopes it
// asks for, and a button (a plain link, so no form and no script) that
// starts the flow at AuthorizePath. Opening it changes nothing.
func (h *Handler) connect(c echo.Context) error {
	ctx := c.Request().Context()
	token := c.Param("link")
	l, err := h.store.Link(ctx, token)
	if err != nil {
		return h.page(c, resultPage{Problem: err})
	}
	_, cfg, a, err := h.load(ctx, l.InstallationID, l.ConfigID)
	if err != nil {
		return h.page(c, resultPage{Problem: err})
	}
	logo := cfg.LogoURL
	if logo == "" {
		logo = a.LogoURL
	}
	return webpage.Render(c, connectTemplate, webpage.Page{
		Title:   "Connect your account to " + a.Name,
		Heading: a.Name,
		Logo:    logo,
		Body: map[string]any{
			"App":     a.Name,
			"Config":  cfg.Name,
			"Scopes":  cfg.Scopes,
			"Start":   AuthorizePath + token,
			"Expires": l.ExpiresAt.UTC().Format("15:04 UTC, 2 January 2006"),
		},
	})
}

// retryURL returns a fresh connect link for another try after a failed
// flow, or "" (a failure to make one only loses the button).
func (h *Handler) retryURL(ctx context.Context, installationID, configID, userID string) string {
	u, _, err := h.ConnectLink(ctx, installationID, configID, userID)
	if err != nil {
		h.log.Warn("making a connect link to try again", "installation_id", installationID, "error", errs.MessageOf(err))
		return ""
	}
	return u
}
