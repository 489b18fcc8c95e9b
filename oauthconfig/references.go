package oauthconfig

import (
	"context"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/settings"
)

// APIReferences tells app.APIHandler what an app's API templates may use
// and which OAuth configs exist.
type APIReferences struct {
	Settings *settings.Store
	Configs  *Store
}

var _ app.References = APIReferences{}

// Variables returns the app's setting keys.
func (r APIReferences) Variables(ctx context.Context, appID string) (map[string]bool, error) {
	defs, err := r.Settings.Definitions(ctx, appID, "")
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(defs))
	for _, d := range defs {
		out[d.Key] = true
	}
	return out, nil
}

// HasConfig reports whether the app has the config.
func (r APIReferences) HasConfig(ctx context.Context, appID, configID string) (bool, error) {
	_, err := r.Configs.Find(ctx, appID, configID)
	if errs.Is(err, errs.NotFound) {
		return false, nil
	}
	return err == nil, err
}
