package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	gosqlite "github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"
	"gorm.io/gorm/callbacks"

	"github.com/latchkey/latchkey/internal/errs"
)

// This file is the one place where a driver error that means "the database
// cannot serve now" becomes errs.Unavailable (503, with Retry-After), so
// that callers see an outage as one, never as an internal error (500).
// GORM passes every error it meets, from queries as from BEGIN and COMMIT,
// through its dialector's Translate (TranslateError is on): translator
// wraps the dialector to classify them there. Stores that wrap the result
// with errs.Wrap or errs.From keep it Unavailable.

// unavailableMessage is what callers are told; the cause is only logged.
const unavailableMessage = "the database is unavailable; try again shortly"

// unavailable reports whether err means the database cannot serve now: it
// cannot be reached, a connection to it broke, it is shutting down or
// refusing connections, or the pool is closed.
func unavailable(err error) bool {
	if err == nil {
		return false
	}
	var (
		connect *pgconn.ConnectError
		op      *net.OpError
		pg      *pgconn.PgError
		lite    *gosqlite.Error
	)
	switch {
	case connectionLost(err):
		return true
	case errors.As(err, &connect), errors.As(err, &op):
		return true // cannot connect (dial timeouts and DNS failures too), or a socket failed
	case errors.Is(err, sql.ErrConnDone):
		return true
	case errors.As(err, &pg):
		// Class 08: connection exception; 57P0x: the server is shutting
		// down or starting; 53300: too many connections.
		return strings.HasPrefix(pg.Code, "08") || strings.HasPrefix(pg.Code, "57P0") || pg.Code == "53300"
	case errors.As(err, &lite):
		// SQLITE_BUSY or SQLITE_LOCKED after busy_timeout: another process
		// (latchkey reencrypt, say) holds the file.
		return lite.Code()&0xff == 5 || lite.Code()&0xff == 6
	}
	// database/sql's errDBClosed is not exported.
	return strings.Contains(err.Error(), "sql: database is closed")
}

// connectionLost reports whether err says that a connection which was
// working went away while in use: the server restarted, failed over, or a
// proxy between dropped it. A read that fails so may work on another
// connection; one that cannot connect at all will not.
func connectionLost(err error) bool {
	var pg *pgconn.PgError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	case errors.As(err, &pg):
		// admin_shutdown, crash_shutdown: the server ended the session.
		return pg.Code == "57P01" || pg.Code == "57P02"
	}
	return false
}

// translator is the dialector GORM uses, turning the errors that
// unavailable accepts into errs.Unavailable after the driver's own
// translation (unique and foreign key violations).
type translator struct {
	gorm.Dialector
}

func (t translator) Translate(err error) error {
	if tr, ok := t.Dialector.(gorm.ErrorTranslator); ok {
		err = tr.Translate(err)
	}
	if unavailable(err) && !errs.Is(err, errs.Unavailable) {
		return errs.Wrap(errs.Unavailable, err, unavailableMessage)
	}
	return err
}

// SavePoint and RollbackTo keep nested transactions working: GORM looks
// for them on the dialector.
func (t translator) SavePoint(tx *gorm.DB, name string) error {
	return t.Dialector.(gorm.SavePointerDialectorInterface).SavePoint(tx, name)
}

func (t translator) RollbackTo(tx *gorm.DB, name string) error {
	return t.Dialector.(gorm.SavePointerDialectorInterface).RollbackTo(tx, name)
}

// liveness decides when a pooled PostgreSQL connection is checked before
// use. pgx pings only connections idle for over a second, so after a
// restart the busiest connections, all dead, would be handed out first.
// Once a connection is found lost, every connection last used before then
// is pinged (and replaced if dead) before its next use; the retry of a
// failed read therefore lands on a live connection.
type liveness struct {
	lost atomic.Int64 // UnixNano of the last connection found lost
}

func (l *liveness) markLost() { l.lost.Store(time.Now().UnixNano()) }

func (l *liveness) shouldPing(_ context.Context, p stdlib.ShouldPingParams) bool {
	lastUse := time.Now().Add(-p.IdleDuration).UnixNano()
	return p.IdleDuration > time.Second || lastUse <= l.lost.Load()
}

// retryReads installs callbacks that run a read again, once, when its
// connection was lost mid-query: database/sql already retries a connection
// found dead before a query is sent (driver.ErrBadConn), but not one that
// dies while the query is under way. Only SELECTs outside a transaction are
// retried: a write may have been applied before the connection broke, and
// a transaction dies with its connection. The row callback also sends its
// error through AddError, which GORM's own does not, so that it is
// translated like every other.
func retryReads(db *gorm.DB, l *liveness) error {
	if err := db.Callback().Query().Replace("gorm:query", func(tx *gorm.DB) {
		callbacks.Query(tx)
		if retryable(tx) {
			l.markLost()
			tx.Error = nil
			callbacks.Query(tx)
		}
	}); err != nil {
		return err
	}
	return db.Callback().Row().Replace("gorm:row", func(tx *gorm.DB) {
		rows, _ := tx.Statement.Settings.Load("rows") // RowQuery consumes it
		callbacks.RowQuery(tx)
		if retryable(tx) {
			l.markLost()
			tx.Error = nil
			if rows != nil {
				tx.Statement.Settings.Store("rows", rows)
			}
			callbacks.RowQuery(tx)
		}
		if err := tx.Error; err != nil {
			tx.Error = nil
			tx.AddError(err)
		}
	})
}

func retryable(tx *gorm.DB) bool {
	if tx.Error == nil || !connectionLost(tx.Error) || tx.Statement.Context.Err() != nil {
		return false
	}
	if _, inTx := tx.Statement.ConnPool.(gorm.TxCommitter); inTx {
		return false
	}
	return strings.HasPrefix(strings.ToUpper(strings.TrimSpace(tx.Statement.SQL.String())), "SELECT")
}
