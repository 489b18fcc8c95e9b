package app

import "github.com/latchkey/latchkey/internal/database"

// The columns of apps and APIs, for reads written in plain SQL (the call
// path's joined read on a cache miss, see oauthconfig/call), in the order
// of the destinations that scan them. Every destination takes NULL as the
// zero value, for rows of a LEFT JOIN. TestColumns checks that they are
// all the model's columns.

// AppColumns are the columns of apps that AppDest scans.
var AppColumns = []string{"id", "account_id", "name", "slug", "description", "logo_url", "return_urls", "created_at", "updated_at"}

// AppDest returns where the columns of AppColumns go in a.
func AppDest(a *App) []any {
	return []any{
		database.Null(&a.ID), database.Null(&a.AccountID), database.Null(&a.Name), database.Null(&a.Slug),
		database.Null(&a.Description), database.Null(&a.LogoURL), database.JSON(&a.ReturnURLs),
		database.Null(&a.CreatedAt), database.Null(&a.UpdatedAt),
	}
}

// APIColumns are the columns of apis that APIDest scans.
var APIColumns = []string{"id", "app_id", "name", "description", "methods", "base_url", "config_id", "headers", "query", "created_at", "updated_at"}

// APIDest returns where the columns of APIColumns go in a.
func APIDest(a *API) []any {
	return []any{
		database.Null(&a.ID), database.Null(&a.AppID), database.Null(&a.Name), database.Null(&a.Description),
		database.JSON(&a.Methods), database.Null(&a.BaseURL), database.Ptr(&a.ConfigID),
		database.JSON(&a.Headers), database.JSON(&a.Query),
		database.Null(&a.CreatedAt), database.Null(&a.UpdatedAt),
	}
}

// IsID reports whether ref, naming an app or an API, is an id rather than
// a slug or name: what Find and FindAPI look it up by.
func IsID(ref string) bool { return isUUID(ref) }
