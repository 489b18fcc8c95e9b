// Package migrations holds Latchkey's schema as forward-only SQL files, one
// folder per dialect, embedded in the binary and applied by goose in
// internal/database. A change to the schema is a new numbered file in both
// folders; a file that has shipped is never edited.
package migrations

import "embed"

// FS holds postgres/*.sql and sqlite/*.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
