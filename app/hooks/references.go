package hooks

import (
	"context"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/settings"
)

var _ settings.References = (*Store)(nil)

// Broken returns the fields of the app's webhook sources that their
// validation accepts with the definitions before and would refuse with
// after (a secret_setting deleted, or made not secret), read through tx
// (see settings.References): a source whose secret is gone refuses every
// event as unverified.
func (st *Store) Broken(ctx context.Context, tx *gorm.DB, appID string, before, after []settings.Definition) ([]settings.Reference, error) {
	sources, err := NewStore(tx, nil).List(ctx, appID)
	if err != nil {
		return nil, err
	}
	var out []settings.Reference
	for _, s := range sources {
		was, now := s, s
		for _, fe := range errs.Added(was.Validate(before), now.Validate(after)) {
			out = append(out, settings.Reference{Kind: "webhook source", Name: s.Name, Field: fe.Field, Problem: fe.Message})
		}
	}
	return out, nil
}
