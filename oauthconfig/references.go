package oauthconfig

import (
	"context"
	"slices"

	"gorm.io/gorm"

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

var _ settings.References = (*Store)(nil)

// Broken returns the fields of the app's configs and APIs that their own
// validation accepts with the definitions before and would refuse with
// after, read through tx (see settings.References). Validation is the one
// place that knows which fields use which settings and how (a token
// setting must not be fixed, a URL's base must be a url setting...), so
// it is run twice rather than the rules written again. A field refused
// before the change for the same reason is not counted against it; one
// already refused for another reason may hide the change's (a template
// reports its first unknown variable only), which a config that passed
// validation when saved cannot have.
func (s *Store) Broken(ctx context.Context, tx *gorm.DB, appID string, before, after []settings.Definition) ([]settings.Reference, error) {
	configs, err := NewStore(tx).List(ctx, appID)
	if err != nil {
		return nil, err
	}
	var out []settings.Reference
	for _, c := range configs {
		was, now := c, c // Validate sets TokenLevel
		for _, fe := range errs.Added(was.Validate(before), now.Validate(after)) {
			out = append(out, settings.Reference{Kind: "OAuth config", Name: c.Name, Field: fe.Field, Problem: fe.Message})
		}
	}
	apis, err := app.NewStore(tx).ListAPIs(ctx, appID)
	if err != nil {
		return nil, err
	}
	// An API's templates may use any of the app's settings (see
	// APIReferences.Variables).
	known := func(defs []settings.Definition) func(string) bool {
		return func(name string) bool {
			return slices.ContainsFunc(defs, func(d settings.Definition) bool { return d.Key == name })
		}
	}
	for _, a := range apis {
		for _, fe := range errs.Added(a.Validate(known(before)), a.Validate(known(after))) {
			out = append(out, settings.Reference{Kind: "API", Name: a.Name, Field: fe.Field, Problem: fe.Message})
		}
	}
	return out, nil
}
