package connection

import (
	"github.com/latchkey/latchkey/internal/cache"
	"github.com/latchkey/latchkey/internal/database"
)

// Columns are the columns of connections that Dest scans, for reads
// written in plain SQL (the call path's joined read on a cache miss, see
// oauthconfig/call). TestColumns checks that they are all the model's.
var Columns = []string{
	"installation_id", "user_id", "config_id", "status", "expires_at", "issued_at", "connected_at", "refreshed_at",
	"last_error", "last_error_at", "updated_at", "refusals", "last_refusal_at", "ended_by", "refresh_started_at",
}

// Dest returns where the columns of Columns go in c. Every destination
// takes NULL as the zero value, for rows of a LEFT JOIN.
func Dest(c *Connection) []any {
	return []any{
		database.Null(&c.InstallationID), database.Null(&c.UserID), database.Null(&c.ConfigID), database.Null(&c.Status),
		database.Ptr(&c.ExpiresAt), database.Ptr(&c.IssuedAt), database.Null(&c.ConnectedAt), database.Ptr(&c.RefreshedAt),
		database.Null(&c.LastError), database.Ptr(&c.LastErrorAt), database.Null(&c.UpdatedAt), database.Null(&c.Refusals),
		database.Ptr(&c.LastRefusalAt), database.Null(&c.EndedBy), database.Ptr(&c.RefreshStartedAt),
	}
}

// Marked is the state of the connection cache before a caller read a
// connection with a query of its own (see Mark).
type Marked struct{ conns cache.Mark[cachedConnection] }

// Mark is for a caller that reads a connection together with other rows
// when what it needs is not in memory: taken before that query, it keeps
// what the query read (Keep) unless a change came in between.
func (cs *Connections) Mark() Marked { return Marked{cs.conns.Mark()} }

// Keep keeps what Get(installationID, owner, configID) answers: c when
// found, else that there is no such connection.
func (m Marked) Keep(installationID, owner, configID string, c Connection, found bool) {
	m.conns.Keep(connCacheKey(installationID, owner, configID), cachedConnection{c: c, found: found})
}
