package main

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/app/console"
	"github.com/latchkey/latchkey/callback"
	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/internal/outbound"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/settings"
	"github.com/latchkey/latchkey/settings/install"
)

// background is what each replica runs besides serving. Every job is safe
// to run on any number of replicas at once.
type background struct {
	dispatcher *app.Dispatcher
	keepAlive  *oauthconfig.KeepAliveJob
	states     *callback.Store
	installs   *install.Store
	log        *slog.Logger
}

// run starts the jobs; they stop when ctx ends.
func (b *background) run(ctx context.Context) {
	go b.dispatcher.Run(ctx, time.Second)
	go b.keepAlive.Run(ctx, time.Minute)
	go sweep(ctx, b.states, b.log)
	go sweepInstallLinks(ctx, b.installs, b.log)
}

// newServer wires every feature package into one HTTP handler and the
// background jobs that go with it.
func newServer(cfg config.Config, db *gorm.DB, cipher *secret.Cipher, log *slog.Logger) (*echo.Echo, *background) {
	var sqlDB *sql.DB
	if d, err := db.DB(); err == nil {
		sqlDB = d
	}
	m := metrics.New(sqlDB)
	e := httpapi.New(log, m)
	// No API key: scrapers reach it like the probes. Keep it off the
	// public ingress (see deploy/).
	e.GET("/metrics", echo.WrapHandler(m.Handler()))

	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := database.Ping(ctx, db); err != nil {
			return errs.Wrap(errs.Unavailable, err, "the database does not answer")
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})

	apps := app.NewStore(db)
	v1 := e.Group("/v1", app.RequireKey(apps))
	app.NewHandler(apps).Register(v1)
	settingStore := settings.NewStore(db, cipher)
	settings.NewHandler(settingStore, apps).Register(v1)

	configs := oauthconfig.NewStore(db)
	requestLog := oauthconfig.NewRequestLog(db, log)
	webhooks := app.NewWebhooks(db, cipher)
	app.NewWebhookHandler(apps, webhooks).Register(v1)
	connections := oauthconfig.NewConnections(db, settingStore)
	connections.Events = webhooks
	outboundClient := outbound.New(outbound.Options{Allow: cfg.OutboundAllow, Timeout: cfg.OutboundTimeout, Observe: m.Outbound})
	tokens := oauthconfig.NewTokenClient(outboundClient, requestLog)
	tokens.Observe = m.TokenRequest
	states := callback.NewStore(db)
	redirectURI := cfg.PublicURL + callback.CallbackPath
	connector := oauthconfig.NewConnector(tokens, connections, settingStore, redirectURI)
	cb := callback.NewHandler(callback.Deps{
		Store: states, Apps: apps, Installations: settingStore, Configs: configs,
		Tokens: tokens, Saver: connector, Cipher: cipher, PublicURL: cfg.PublicURL, Log: log,
	})
	oauthconfig.NewHandler(configs, apps, settingStore, requestLog, connections, cb.RedirectURI()).Register(v1)
	cb.Register(v1, e)
	// The hosted install page; its success page offers the connect page.
	installs := install.NewStore(db, settingStore)
	install.NewHandler(install.Deps{
		Store: installs, Apps: apps, Settings: settingStore, Configs: configs,
		Connect: cb, PublicURL: cfg.PublicURL, Log: log,
	}).Register(v1, e)

	refresher := oauthconfig.NewRefresher(db, settingStore, connections, tokens, cb.RedirectURI(), log)
	refresher.SetLinker(cb)
	app.NewAPIHandler(apps, oauthconfig.APIReferences{Settings: settingStore, Configs: configs}).Register(v1)
	// API calls stream: a longer overall timeout than token requests, the
	// same wait for the first byte, and never a redirect followed.
	apiClient := outbound.New(outbound.Options{
		Allow: cfg.OutboundAllow, ResponseHeaderTimeout: cfg.OutboundTimeout,
		Timeout: 10 * cfg.OutboundTimeout, MaxResponseBytes: 256 << 20,
		Observe: m.Outbound,
	})
	caller := oauthconfig.NewCaller(apps, settingStore, configs, refresher, connector, apiClient)
	caller.Register(v1)

	// The developer console: the same stores and functions, as pages.
	console.New(console.Deps{
		Sessions: console.NewSessions(db, nil), Apps: apps, Settings: settingStore, Configs: configs,
		RequestLog: requestLog, Connections: connections, Webhooks: webhooks, Caller: caller, Links: cb,
		PublicURL: cfg.PublicURL, Log: log,
	}).Register(e)

	// Webhook receivers are developer-configured URLs like any other: the
	// same guard, no redirects followed (a signed body must not travel).
	hookClient := outbound.New(outbound.Options{Allow: cfg.OutboundAllow, Timeout: cfg.OutboundTimeout, Observe: m.Outbound})
	return e, &background{
		dispatcher: app.NewDispatcher(webhooks, hookClient, log),
		keepAlive:  oauthconfig.NewKeepAliveJob(db, settingStore, configs, refresher, log),
		states:     states,
		installs:   installs,
		log:        log,
	}
}
