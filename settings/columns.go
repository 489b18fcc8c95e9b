package settings

import (
	"github.com/latchkey/latchkey/internal/cache"
	"github.com/latchkey/latchkey/internal/database"
)

// The columns of installations and definitions, for reads written in
// plain SQL (Resolve's on a cache miss, and the call path's joined read,
// see oauthconfig/call), in the order of the destinations that scan them.
// Every destination takes NULL as the zero value, for rows of a LEFT JOIN
// or a UNION's padding. TestColumns checks that they are all the model's
// columns.

// InstallationColumns are the columns of installations that
// InstallationDest scans.
var InstallationColumns = []string{"id", "app_id", "organization_id", "created_at", "updated_at"}

// InstallationDest returns where the columns of InstallationColumns go in i.
func InstallationDest(i *Installation) []any {
	return []any{database.Null(&i.ID), database.Null(&i.AppID), database.Null(&i.OrganizationID), database.Null(&i.CreatedAt), database.Null(&i.UpdatedAt)}
}

// definitionColumns are the columns of setting_definitions that
// definitionDest scans.
var definitionColumns = []string{"id", "app_id", "key", "level", "label", "description", "secret", "required",
	"default_value", "pattern", "position", "visibility", "type", "created_at", "updated_at", "fixed_secret"}

func definitionDest(d *Definition) []any {
	return []any{
		database.Null(&d.ID), database.Null(&d.AppID), database.Null(&d.Key), database.Null(&d.Level),
		database.Null(&d.Label), database.Null(&d.Description), database.Null(&d.Secret), database.Null(&d.Required),
		database.Ptr(&d.DefaultValue), database.Ptr(&d.Pattern), database.Null(&d.Position), database.Null(&d.Visibility),
		database.Null(&d.Type), database.Null(&d.CreatedAt), database.Null(&d.UpdatedAt), database.Ptr(&d.FixedSecret),
	}
}

// CachedInstallation returns installation id when it is in memory, as
// Installation would, without reading the database.
func (s *Store) CachedInstallation(id string) (Installation, bool) { return s.insts.Get(id) }

// Marked is the state of the store's installation cache before a caller
// read installations with a query of its own (see Mark).
type Marked struct{ insts cache.Mark[Installation] }

// Mark is for a caller that reads an installation together with other
// rows when its cached copy misses: taken before that query, it keeps what
// the query read (KeepInstallation) unless a change came in between.
func (s *Store) Mark() Marked { return Marked{s.insts.Mark()} }

// KeepInstallation keeps i as what Installation(i.ID) answers.
func (m Marked) KeepInstallation(i Installation) { m.insts.Keep(i.ID, i) }
