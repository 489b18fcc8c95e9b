package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/app/console"
	"github.com/latchkey/latchkey/app/hooks"
	"github.com/latchkey/latchkey/callback"
	"github.com/latchkey/latchkey/internal/cache"
	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/keycheck"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/internal/outbound"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/oauthconfig/call"
	"github.com/latchkey/latchkey/oauthconfig/connection"
	"github.com/latchkey/latchkey/oauthconfig/token"
	"github.com/latchkey/latchkey/settings"
	"github.com/latchkey/latchkey/settings/install"
)

// background is what each replica runs besides serving. Every job is safe
// to run on any number of replicas at once.
type background struct {
	bus        *cache.Bus // listens for other replicas' changes
	dsn        string
	dispatcher *app.Dispatcher
	keepAlive  *connection.KeepAliveJob

	// jobs are what start runs, each until its context ends: the three
	// above and the sweeps.
	jobs []func(context.Context)
	wg   sync.WaitGroup
}

// start runs every job in its own goroutine; they stop when ctx ends.
func (b *background) start(ctx context.Context) {
	for _, job := range b.jobs {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			job(ctx)
		}()
	}
}

// wait returns when every job started has returned, or with an error when
// ctx ends first.
func (b *background) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("background jobs still running: %w", ctx.Err())
	}
}

// sweepSeenEvents forgets provider event ids older than the dedupe window
// now and then. Any replica may run it at any time.
func sweepSeenEvents(ctx context.Context, s *hooks.Store, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.DeleteSeenBefore(ctx, time.Now().Add(-hooks.DedupeWindow)); err != nil {
				log.Warn("deleting seen webhook event ids", "error", err.Error())
			}
		}
	}
}

// newServer wires every feature package into one HTTP handler and the
// background jobs that go with it.
func newServer(cfg config.Config, db *gorm.DB, cipher *secret.Cipher, log *slog.Logger) (*echo.Echo, *background) {
	var sqlDB *sql.DB
	if d, err := db.DB(); err == nil {
		sqlDB = d
	}
	database.Warm(context.Background(), db)
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
		// Stored secrets must open: the keys must still be those the
		// database knows (see keycheck). A few rows, read and opened.
		if _, err := keycheck.VerifyStored(ctx, db, cipher); err != nil {
			var wrong *keycheck.WrongKeyError
			if errors.As(err, &wrong) {
				return errs.Wrap(errs.Unavailable, err, "an encryption key does not open the check value stored for it: stored secrets cannot be decrypted")
			}
			return errs.Wrap(errs.Unavailable, err, "the database does not answer")
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})

	// What every call reads is cached, per store; on PostgreSQL only
	// while the bus listens for other replicas' changes (background.run).
	bus := cache.NewBus(db, cache.Options{Entries: cfg.CacheEntries, TTL: cfg.CacheTTL}, log)
	apps := app.NewStore(db)
	apps.UseCache(bus)
	v1 := e.Group("/v1", app.RequireKey(apps))
	app.NewHandler(apps).Register(v1)
	settingStore := settings.NewStore(db, cipher)
	settingStore.UseCache(bus)
	settings.NewHandler(settingStore, apps).Register(v1)

	configs := oauthconfig.NewStore(db)
	configs.UseCache(bus)
	// A client certificate and its key, paired by a config, are checked
	// together whenever an organization stores either, and when the
	// developer fixes both, whenever the config or either value changes.
	settingStore.UseKeyPairs(configs)
	configs.UsePairChecker(settingStore)
	// A setting that a config or an API uses is not deleted, nor changed
	// in a way their validation would refuse.
	settingStore.UseReferences(configs)
	requestLog := token.NewRequestLog(db, log)
	webhooks := app.NewWebhooks(db, cipher)
	webhooks.UseCache(bus)
	app.NewWebhookHandler(apps, webhooks).Register(v1)
	connections := connection.NewConnections(db, settingStore)
	connections.UseCache(bus)
	connections.Events = webhooks
	outboundClient := outbound.New(outbound.Options{Allow: cfg.OutboundAllow, Timeout: cfg.OutboundTimeout, Observe: m.Outbound, MaxIdleConnsPerHost: cfg.OutboundIdle, RootCAs: cfg.OutboundRootCAs})
	tokens := token.NewClient(outboundClient, requestLog)
	tokens.Observe = m.TokenRequest
	states := callback.NewStore(db)
	redirectURI := cfg.PublicURL + callback.CallbackPath
	connector := connection.NewConnector(tokens, connections, settingStore, redirectURI)
	cb := callback.NewHandler(callback.Deps{
		Store: states, Apps: apps, Installations: settingStore, Configs: configs,
		Tokens: tokens, Saver: connector, Cipher: cipher, PublicURL: cfg.PublicURL, Log: log,
	})
	oauthconfig.NewHandler(configs, apps, settingStore, cb.RedirectURI()).Register(v1)
	connection.NewHandler(configs, apps, settingStore, requestLog, connections, cb.RedirectURI()).Register(v1)
	cb.Register(v1, e)
	// The hosted install page; its success page offers the connect page.
	installs := install.NewStore(db, settingStore)
	install.NewHandler(install.Deps{
		Store: installs, Apps: apps, Settings: settingStore, Configs: configs,
		Connect: cb, PublicURL: cfg.PublicURL, Log: log,
	}).Register(v1, e)

	// Providers' webhooks in: verified, routed to an installation, and
	// handed to the app's webhooks above as provider.event.
	hookStore := hooks.NewStore(db, webhooks)
	settingStore.UseReferences(hookStore)
	hookHandler := hooks.NewHandler(hooks.Deps{
		Store: hookStore, Apps: apps, Settings: settingStore, PublicURL: cfg.PublicURL, Log: log,
		Limiter: hooks.NewLimiter(cfg.HookRate, cfg.HookBurst),
	})
	hookHandler.Observe = m.HookEvent
	hookHandler.Register(v1, e)

	refresher := connection.NewRefresher(db, settingStore, connections, tokens, cb.RedirectURI(), log)
	refresher.DatabaseShare = cfg.RenewalShare
	refresher.SetLinker(cb)
	connector.SetKeeper(refresher) // a code exchange's tokens the database does not take
	app.NewAPIHandler(apps, oauthconfig.APIReferences{Settings: settingStore, Configs: configs}).Register(v1)
	// API calls stream: a longer overall timeout than token requests, the
	// same wait for the first byte, and never a redirect followed.
	apiClient := outbound.New(outbound.Options{
		Allow: cfg.OutboundAllow, ResponseHeaderTimeout: cfg.OutboundTimeout,
		Timeout: 10 * cfg.OutboundTimeout, MaxResponseBytes: 256 << 20,
		Observe: m.Outbound, MaxIdleConnsPerHost: cfg.OutboundIdle, RootCAs: cfg.OutboundRootCAs,
	})
	caller := call.NewCaller(db, apps, settingStore, configs, refresher, connector, apiClient)
	caller.Register(v1)

	// The developer console: the same stores and functions, as pages.
	console.New(console.Deps{
		Sessions: console.NewSessions(db, nil), Apps: apps, Settings: settingStore, Configs: configs,
		RequestLog: requestLog, Connections: connections, Webhooks: webhooks, Caller: caller, Links: cb,
		PublicURL: cfg.PublicURL, Log: log,
	}).Register(e)

	// Webhook receivers are developer-configured URLs like any other: the
	// same guard, no redirects followed (a signed body must not travel).
	hookClient := outbound.New(outbound.Options{Allow: cfg.OutboundAllow, Timeout: cfg.OutboundTimeout, Observe: m.Outbound, RootCAs: cfg.OutboundRootCAs})
	b := &background{
		bus:        bus,
		dsn:        database.PostgresDSN(db),
		dispatcher: app.NewDispatcher(webhooks, hookClient, log),
		keepAlive:  connection.NewKeepAliveJob(db, settingStore, configs, refresher, log),
	}
	b.jobs = []func(context.Context){
		func(ctx context.Context) { b.bus.Run(ctx, b.dsn) },
		func(ctx context.Context) { b.dispatcher.Run(ctx, time.Second) },
		func(ctx context.Context) { b.keepAlive.Run(ctx, time.Minute) },
		func(ctx context.Context) { sweep(ctx, states, log) },
		func(ctx context.Context) { sweepInstallLinks(ctx, installs, log) },
		func(ctx context.Context) { sweepSeenEvents(ctx, hookStore, log) },
	}
	return e, b
}
