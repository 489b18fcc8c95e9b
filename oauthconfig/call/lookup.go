package call

import (
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/oauthconfig/connection"
	"github.com/latchkey/latchkey/settings"
)

// target is what a call reads before its settings: the installation, its
// app, the API and the API's config. A missing API or config is kept as
// an error (apiErr, cfgErr), which prepared returns where it always did:
// after the checks that come first.
type target struct {
	inst   settings.Installation
	app    app.App
	api    app.API
	cfg    *oauthconfig.Config
	apiErr error
	cfgErr error
}

// lookup finds installation id, whose app must be the account's, the
// app's API ref and its config: from the stores' caches when all are
// there (a warm call reads no database), else with read's one query. The
// error is the installation's: errs.NotFound when there is none or it is
// another account's, or the database's.
func (h *Caller) lookup(ctx context.Context, accountID, id, ref, userID string) (target, error) {
	if t, ok := h.cached(accountID, id, ref); ok {
		return t, nil
	}
	release, err := database.Take(ctx) // see Caller.share
	if err != nil {
		return target{}, err
	}
	defer release()
	// Calls that missed together waited for their places: all but the
	// first find what it read.
	if t, ok := h.cached(accountID, id, ref); ok {
		return t, nil
	}
	return h.read(ctx, accountID, id, ref, userID)
}

// cached is lookup from the caches alone; ok is false when one misses.
func (h *Caller) cached(accountID, id, ref string) (t target, ok bool) {
	if t.inst, ok = h.settings.CachedInstallation(id); ok {
		if t.app, ok = h.apps.CachedApp(accountID, t.inst.AppID); ok {
			if t.api, ok = h.apps.CachedAPI(t.app.ID, ref); ok && t.api.ConfigID != nil {
				var cfg oauthconfig.Config
				if cfg, ok = h.configs.Cached(*t.api.ConfigID); ok {
					t.cfg = &cfg
				}
			}
		}
	}
	return t, ok
}

// The query of read: the installation, the app if it is the account's,
// its API by id or name (as app.Store.FindAPI looks it up), the API's
// config, and the connections of the installation's organization and of
// the user for that config (read picks the config's owner's). Each row
// has one column per model column, NULL where a LEFT JOIN found nothing.
var readByID, readByName = readQuery("p.id"), readQuery("p.name")

func readQuery(apiColumn string) string {
	var cols []string
	for _, t := range []struct {
		alias string
		cols  []string
	}{
		{"i", settings.InstallationColumns}, {"a", app.AppColumns}, {"p", app.APIColumns},
		{"c", oauthconfig.Columns}, {"n", connection.Columns},
	} {
		for _, c := range t.cols {
			cols = append(cols, t.alias+"."+c)
		}
	}
	return "SELECT " + strings.Join(cols, ", ") + ` FROM installations i
		LEFT JOIN apps a ON a.id = i.app_id AND a.account_id = ?
		LEFT JOIN apis p ON p.app_id = a.id AND ` + apiColumn + ` = ?
		LEFT JOIN oauth_configs c ON c.id = p.config_id
		LEFT JOIN connections n ON n.installation_id = i.id AND n.config_id = c.id AND n.user_id IN ('', ?)
		WHERE i.id = ?`
}

// read is lookup on a cache miss (holding a place in the calls' share of
// the pool): one query, in plain SQL, for what
// would otherwise take five (installation, app, API, config, connection),
// whose results go to the stores' caches as their own reads would have
// put them there, so that the next call reads nothing.
func (h *Caller) read(ctx context.Context, accountID, id, ref, userID string) (target, error) {
	instMark, appMark, cfgMark, connMark := h.settings.Mark(), h.apps.Mark(), h.configs.Mark(), h.refresher.Connections().Mark()
	var (
		t                 target
		inst              settings.Installation
		a                 app.App
		api               app.API
		cfg               oauthconfig.Config
		conn, owned       connection.Connection
		found, ownedFound bool
	)
	dest := slices.Concat(settings.InstallationDest(&inst), app.AppDest(&a), app.APIDest(&api), oauthconfig.Dest(&cfg), connection.Dest(&conn))
	q := readByName
	if app.IsID(ref) {
		q = readByID
	}
	err := database.Query(ctx, h.db, func(rows *sql.Rows) error {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		found = true
		if conn.InstallationID != "" && conn.UserID == cfg.Owner(userID) {
			owned, ownedFound = conn, true
		}
		return nil
	}, q, accountID, ref, userID, id)
	if err != nil {
		return target{}, errs.From(err, "reading the installation and API")
	}
	if !found {
		return target{}, errs.NotFoundf("installation %q not found", id)
	}
	t.inst = inst
	instMark.KeepInstallation(inst)
	if a.ID == "" {
		// Another account's: not found, as oauthconfig.CallersInstallation answers.
		return target{}, errs.NotFoundf("installation %q not found", id)
	}
	t.app = a
	appMark.KeepApp(accountID, inst.AppID, a)
	if api.ID == "" {
		t.apiErr = errs.NotFoundf("API %q not found", ref)
		return t, nil
	}
	t.api = api
	appMark.KeepAPI(a.ID, ref, api)
	if api.ConfigID == nil {
		return t, nil
	}
	if cfg.ID == "" {
		t.cfgErr = errs.NotFoundf("OAuth config %q not found", *api.ConfigID)
		return t, nil
	}
	t.cfg = &cfg
	cfgMark.Keep(cfg)
	if cfg.TokenLevel != settings.User || userID != "" {
		connMark.Keep(inst.ID, cfg.Owner(userID), cfg.ID, owned, ownedFound)
	}
	return t, nil
}

// prepared checks what lookup found for a call by userID ("" for the
// installation's tokens), in the order the checks have always run, and
// returns the call with settings whose token is fresh.
func (h *Caller) prepared(ctx context.Context, t target, userID string) (*call, error) {
	if t.apiErr != nil {
		return nil, t.apiErr
	}
	cl := &call{inst: t.inst, api: t.api, userID: userID}
	if userID != "" {
		if fe := settings.CheckID("user", userID); fe != nil {
			return nil, errs.Fields{*fe}.Err()
		}
	}
	var err error
	if t.api.ConfigID == nil {
		cl.values, err = h.settings.Resolve(ctx, t.inst, userID)
		return cl, err
	}
	if t.cfgErr != nil {
		return nil, t.cfgErr
	}
	cl.cfg = t.cfg
	if cl.cfg.TokenLevel == settings.User && userID == "" {
		return nil, errs.New(errs.Invalid, "API %q uses end users' tokens: call it under /users/{user}/", t.api.Name)
	}
	cl.values, err = h.refresher.Fresh(ctx, t.inst, userID, cl.cfg)
	return cl, err
}
