package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/oauthconfig/token"
)

// logPageSize is how many entries a log page shows: each carries bodies.
const logPageSize = 25

var requestLogTemplate = parse("console-logs", `
<h1>Request log of {{.App.Name}}</h1>
<p>The token, refresh and identity requests of configs with logging on, and the provider's answers, with every secret redacted before they were stored. The reference on an end user's error page is an entry's id.</p>
<form method="get" action="/console/apps/{{.App.ID}}/logs" aria-label="Filter the log">
<div class="row">{{range .D.Filter.Inputs}}{{template "input" .}}{{end}}</div>
<div class="actions"><button type="submit" id="filter">Show</button> <a class="button secondary" href="/console/apps/{{.App.ID}}/logs">All entries</a></div>
</form>
{{if .D.Entries}}<table id="entries">
<thead><tr><th scope="col">Time</th><th scope="col">Kind</th><th scope="col">Config</th><th scope="col">Installation and user</th><th scope="col">Answer</th></tr></thead>
<tbody>{{range .D.Entries}}<tr>
<td>{{.When}}</td><td class="entry-kind">{{.Kind}}</td><td>{{.Config}}</td>
<td>{{with .InstallationID}}<a href="/console/installations/{{.}}"><code>{{.}}</code></a>{{end}}{{with .UserID}}<br>{{.}}{{end}}</td>
<td>{{if .Status}}{{.Status}}{{else}}no answer{{end}}{{with .Error}}<br><span class="status bad">{{.}}</span>{{end}}<br><span class="muted">{{.DurationMS}} ms</span></td></tr>
<tr><td colspan="5"><details><summary>Entry <code>{{.ID}}</code></summary>
<p><strong>{{.Method}}</strong> <code>{{.URL}}</code></p>
<h3>Request headers</h3><pre><code>{{.RequestHeaders}}</code></pre>
{{with .RequestBody}}<h3>Request body</h3><pre><code>{{.}}</code></pre>{{end}}
<h3>Response headers</h3><pre><code>{{.ResponseHeaders}}</code></pre>
{{with .ResponseBody}}<h3>Response body</h3><pre><code>{{.}}</code></pre>{{end}}
</details></td></tr>
{{end}}</tbody>
</table>
{{template "pager" .D.Pager}}{{else}}<p id="no-entries">{{if .D.Reference}}No entry of {{.App.Name}}'s request log has the reference <code>{{.D.Reference}}</code>. A reference that is not in the log is the id of a request in Latchkey's own log (configs without request logging): search the server's log lines for it as <code>request_id</code>.{{else}}No entries.{{end}}</p>{{end}}
`)

type entryRow struct {
	ID, When, Kind, Config, InstallationID, UserID, Method, URL string
	RequestHeaders, RequestBody, ResponseHeaders, ResponseBody  string
	Status                                                      int
	Error                                                       string
	DurationMS                                                  int64
}

// requestLog shows the app's OAuth request log, filtered by config,
// installation, user, outcome and reference, newest first.
func (h *Handler) requestLog(c echo.Context) error {
	a, err := h.app(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	q := c.QueryParams()
	cfgs, err := h.Configs.List(ctx, a.ID)
	if err != nil {
		return err
	}
	names := map[string]string{}
	configOptions := []option{{Value: "", Label: "(all)"}}
	for _, cfg := range cfgs {
		names[cfg.ID] = cfg.Name
		configOptions = append(configOptions, option{Value: cfg.ID, Label: cfg.Name, Selected: cfg.ID == q.Get("config")})
	}
	f := newForm(nil, nil)
	f.ID = "filter"
	f.add(input{Name: "id", Label: "Reference", Value: strings.TrimSpace(q.Get("id"))})
	f.add(input{Name: "config", Label: "OAuth config", Type: "select", Options: configOptions})
	f.add(input{Name: "installation", Label: "Installation id", Value: q.Get("installation")})
	f.add(input{Name: "user", Label: "User id", Value: q.Get("user")})
	f.add(input{Name: "outcome", Label: "Outcome", Type: "select", Options: []option{
		{Value: "", Label: "(all)"}, {Value: "ok", Label: "answered 2xx", Selected: q.Get("outcome") == "ok"},
		{Value: "failed", Label: "failed", Selected: q.Get("outcome") == "failed"}}})
	es, err := h.RequestLog.List(ctx, token.LogFilter{
		AppID: a.ID, ID: strings.TrimSpace(q.Get("id")), ConfigID: q.Get("config"), InstallationID: q.Get("installation"),
		UserID: q.Get("user"), Outcome: q.Get("outcome"), Before: q.Get("before"), Limit: logPageSize + 1,
	})
	if err != nil {
		return err
	}
	var rows []entryRow
	for i, e := range es {
		if i == logPageSize {
			break
		}
		rows = append(rows, entryRow{ID: e.ID, When: when(&e.CreatedAt), Kind: e.Kind, Config: names[e.ConfigID],
			InstallationID: e.InstallationID, UserID: e.UserID, Method: e.Method, URL: e.URL,
			RequestHeaders: showPairs(e.RequestHeader), RequestBody: e.RequestBody,
			ResponseHeaders: showPairs(e.ResponseHeader), ResponseBody: e.ResponseBody,
			Status: e.Status, Error: e.Error, DurationMS: e.DurationMS})
	}
	var last string
	if len(rows) > 0 {
		last = rows[len(rows)-1].ID
	}
	return h.render(c, requestLogTemplate, http.StatusOK, "Request log of "+a.Name, view{App: &a, Section: "logs", D: map[string]any{
		"Filter": f, "Entries": rows, "Reference": strings.TrimSpace(q.Get("id")),
		"Pager": newPager(Path+"/apps/"+a.ID+"/logs", q, map[string]string{"before": last}, len(es), logPageSize),
	}})
}

var findTemplate = parse("console-find", `
<h1>Reference not found</h1>
<p>No request log entry of your apps has the reference <code>{{.D.Reference}}</code>.</p>
<p>A reference that is not in the log is the id of a request in Latchkey's own log, for configs without request logging: search the server's log lines for it as <code>request_id</code>. To log the requests of a config, turn its request logging on.</p>
<p><a href="/console/apps">Back to your apps</a></p>
`)

// find opens the request log entry that an end user's error page gave as
// its reference, in its app's log, if the app is the account's.
func (h *Handler) find(c echo.Context) error {
	ref := strings.TrimSpace(c.QueryParam("reference"))
	ctx := c.Request().Context()
	if ref != "" {
		es, err := h.RequestLog.List(ctx, token.LogFilter{ID: ref, Limit: 1})
		if err != nil {
			return err
		}
		if len(es) == 1 {
			cfg, err := h.Configs.FindByID(ctx, es[0].ConfigID)
			if err != nil && !errs.Is(err, errs.NotFound) {
				return err
			}
			if err == nil {
				a, err := h.Apps.Find(ctx, accountID(c), cfg.AppID)
				if err == nil {
					return redirect(c, Path+"/apps/"+a.ID+"/logs?id="+url.QueryEscape(ref), "")
				}
				if !errs.Is(err, errs.NotFound) {
					return err
				}
			}
		}
	}
	return h.render(c, findTemplate, http.StatusNotFound, "Reference not found", view{Section: "apps", D: map[string]any{"Reference": ref}})
}

var deliveriesTemplate = parse("console-deliveries", `
<h1>Webhook deliveries of {{.App.Name}}</h1>
<p>Connection events on their way to the app's webhooks (see <code>/v1/apps/{app}/webhooks</code>), newest first.</p>
<form method="get" action="/console/apps/{{.App.ID}}/deliveries" aria-label="Filter the deliveries">
<div class="row">{{range .D.Filter.Inputs}}{{template "input" .}}{{end}}</div>
<div class="actions"><button type="submit" id="filter">Show</button> <a class="button secondary" href="/console/apps/{{.App.ID}}/deliveries">All deliveries</a></div>
</form>
{{if .D.Deliveries}}<table>
<thead><tr><th scope="col">Time</th><th scope="col">Event</th><th scope="col">Webhook</th><th scope="col">Outcome</th></tr></thead>
<tbody>{{range .D.Deliveries}}<tr><td>{{.When}}</td><td>{{.Event}}</td><td>{{.Webhook}}</td>
<td>{{.Outcome}}{{with .LastStatus}}<br>last answer {{.}}{{end}}{{with .LastError}}<br><span class="status bad">{{.}}</span>{{end}}<br><span class="muted">{{.Attempts}} attempt(s)</span></td></tr>
<tr><td colspan="4"><details><summary>Delivery <code>{{.ID}}</code></summary><pre><code>{{.Payload}}</code></pre></details></td></tr>
{{end}}</tbody>
</table>
{{template "pager" .D.Pager}}{{else}}<p>No deliveries.</p>{{end}}
`)

type deliveryRow struct {
	ID, When, Event, Webhook, Outcome, LastError, Payload string
	LastStatus, Attempts                                  int
}

// deliveries shows the app's webhook deliveries, filtered by webhook,
// event, outcome and the installation, user and config they are about.
func (h *Handler) deliveries(c echo.Context) error {
	a, err := h.app(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	q := c.QueryParams()
	hooks, err := h.Webhooks.List(ctx, a.ID)
	if err != nil {
		return err
	}
	urls := map[string]string{}
	hookOptions := []option{{Value: "", Label: "(all)"}}
	for _, w := range hooks {
		urls[w.ID] = w.URL
		hookOptions = append(hookOptions, option{Value: w.ID, Label: w.URL, Selected: w.ID == q.Get("webhook")})
	}
	f := newForm(nil, nil)
	f.ID = "filter"
	f.add(input{Name: "webhook", Label: "Webhook", Type: "select", Options: hookOptions})
	f.add(input{Name: "event", Label: "Event", Type: "select", Options: append([]option{{Value: "", Label: "(all)"}}, options(q.Get("event"), app.Events...)...)})
	f.add(input{Name: "outcome", Label: "Outcome", Type: "select", Options: []option{{Value: "", Label: "(all)"},
		{Value: "delivered", Label: "delivered", Selected: q.Get("outcome") == "delivered"},
		{Value: "pending", Label: "pending", Selected: q.Get("outcome") == "pending"},
		{Value: "failed", Label: "given up", Selected: q.Get("outcome") == "failed"}}})
	f.add(input{Name: "installation", Label: "Installation id", Value: q.Get("installation")})
	f.add(input{Name: "user", Label: "User id", Value: q.Get("user")})
	f.add(input{Name: "config", Label: "OAuth config id", Value: q.Get("config")})
	data := map[string]string{}
	for param, field := range map[string]string{"installation": "installation_id", "user": "user_id", "config": "config_id"} {
		if v := strings.TrimSpace(q.Get(param)); v != "" {
			data[field] = v
		}
	}
	ds, err := h.Webhooks.ListDeliveries(ctx, app.DeliveryFilter{AppID: a.ID, WebhookID: q.Get("webhook"), Event: q.Get("event"),
		Outcome: q.Get("outcome"), Data: data, Before: q.Get("before"), Limit: logPageSize + 1})
	if err != nil {
		return err
	}
	var rows []deliveryRow
	for i, d := range ds {
		if i == logPageSize {
			break
		}
		r := deliveryRow{ID: d.ID, When: when(&d.CreatedAt), Event: d.Event, Webhook: urls[d.WebhookID],
			LastError: d.LastError, Payload: d.Payload, LastStatus: d.LastStatus, Attempts: d.Attempts, Outcome: "pending"}
		switch {
		case d.DeliveredAt != nil:
			r.Outcome = "delivered " + when(d.DeliveredAt)
		case d.FailedAt != nil:
			r.Outcome = "given up " + when(d.FailedAt)
		default:
			r.Outcome = "pending, next attempt " + when(&d.NextAttemptAt)
		}
		rows = append(rows, r)
	}
	var last string
	if len(rows) > 0 {
		last = rows[len(rows)-1].ID
	}
	return h.render(c, deliveriesTemplate, http.StatusOK, "Webhook deliveries of "+a.Name, view{App: &a, Section: "deliveries", D: map[string]any{
		"Filter": f, "Deliveries": rows,
		"Pager": newPager(Path+"/apps/"+a.ID+"/deliveries", q, map[string]string{"before": last}, len(ds), logPageSize),
	}})
}
