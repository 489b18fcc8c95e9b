// Package database opens Latchkey's database (PostgreSQL, or an embedded
// SQLite file when no URL is given) and applies the embedded migrations.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/latchkey/latchkey/migrations"
)

// Dialects, as returned by Dialect.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// Open connects to url when it is set (postgres:// or postgresql://), and
// otherwise to the SQLite file at sqlitePath, created if missing. It does not
// migrate; call Migrate.
func Open(ctx context.Context, url, sqlitePath string) (*gorm.DB, error) {
	cfg := &gorm.Config{
		// Stores see gorm.ErrDuplicatedKey and gorm.ErrForeignKeyViolated
		// instead of driver-specific errors.
		TranslateError: true,
		// GORM's logger prints SQL with its arguments; values must never reach
		// a log, so it stays silent and callers log the errors they return.
		Logger:  logger.Discard,
		NowFunc: func() time.Time { return time.Now().UTC() },
		// A single statement is atomic without a transaction around it,
		// and no model has hooks or associations that would add more:
		// GORM's default BEGIN and COMMIT would only add two round trips
		// to every write (a request log entry, a lease). Writes of several
		// statements say so with Transaction.
		SkipDefaultTransaction: true,
	}
	var (
		db   *gorm.DB
		err  error
		live liveness
	)
	switch {
	case url == "":
		if sqlitePath == "" {
			return nil, errors.New("database: no DATABASE_URL and no SQLite path")
		}
		db, err = gorm.Open(sqlite.Open(sqliteDSN(sqlitePath)), cfg)
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		db, err = gorm.Open(postgres.New(postgres.Config{
			DSN:          url,
			OptionOpenDB: []stdlib.OptionOpenDB{stdlib.OptionShouldPing(live.shouldPing)},
		}), cfg)
	default:
		// The URL may hold a password: name only its scheme.
		scheme, _, _ := strings.Cut(url, ":")
		return nil, fmt.Errorf("database: DATABASE_URL scheme %q is not supported; use postgres://", scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("database: open: %w", redact(err, url))
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	// See unavailable.go: outages become errs.Unavailable, and a read whose
	// connection broke is tried again once.
	db.Dialector = translator{db.Dialector}
	if err := retryReads(db, &live); err != nil {
		sqlDB.Close()
		return nil, err
	}
	if Dialect(db) == SQLite {
		// SQLite allows one writer at a time; one connection serialises
		// writers in Go instead of failing them with SQLITE_BUSY.
		sqlDB.SetMaxOpenConns(1)
	} else {
		// Connections opened are kept, up to 10 idle, as a fixed-size pool
		// keeps them: one opened when a burst comes makes a request wait
		// for PostgreSQL to start a backend (in BenchmarkRefreshStorm, an
		// ordinary request waited 120 ms for one). A kept connection that
		// broke meanwhile is found by pgx's ping on reuse and replaced.
		sqlDB.SetMaxOpenConns(20)
		sqlDB.SetMaxIdleConns(10)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("database: connect: %w", redact(err, url))
	}
	return db, nil
}

// warmConns is how many connections a server's pool opens at start: the
// calls' share of the pool, a renewal's slot and two for the rest.
const warmConns = sharePlaces + 3

// Warm opens a few connections of a server's PostgreSQL pool at once, to
// keep idle (see Open), so that the first burst of requests does not wait
// for new ones. A connection that cannot be opened now is left for later.
func Warm(ctx context.Context, db *gorm.DB) {
	sqlDB, err := db.DB()
	if err != nil || Dialect(db) != Postgres {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conns := make([]*sql.Conn, warmConns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			if c, err := sqlDB.Conn(ctx); err == nil {
				conns[i] = c
			}
		})
	}
	wg.Wait()
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// sqliteDSN opens path in WAL mode, waiting up to 5s for a lock. Every
// transaction begins IMMEDIATE, taking the write lock at once: a
// transaction that reads, then writes (most do) would otherwise fail with
// SQLITE_BUSY, unwaited, when another process (reencrypt beside a server)
// wrote in between.
func sqliteDSN(path string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return "file:" + path + sep + "_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// redact keeps a connection URL (and the password in it) out of an error.
func redact(err error, url string) error {
	if url == "" || !strings.Contains(err.Error(), url) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), url, "<DATABASE_URL>"))
}

// Dialect returns Postgres or SQLite.
func Dialect(db *gorm.DB) string {
	if db.Dialector.Name() == "postgres" {
		return Postgres
	}
	return SQLite
}

// Migrate applies every migration not yet applied, each in its own
// transaction. It returns the versions it applied.
func Migrate(ctx context.Context, db *gorm.DB) ([]int64, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	dialect, dir := goose.DialectSQLite3, "sqlite"
	if Dialect(db) == Postgres {
		dialect, dir = goose.DialectPostgres, "postgres"
	}
	fsys, err := fs.Sub(migrations.FS, dir)
	if err != nil {
		return nil, err
	}
	var opts []goose.ProviderOption
	if Dialect(db) == Postgres {
		// Replicas starting together must not migrate at once: a session
		// advisory lock makes them take turns. Its id comes from the schema,
		// so that databases holding several schemas (tests) lock each alone.
		var schema string
		if err := db.WithContext(ctx).Raw("SELECT current_schema()").Scan(&schema).Error; err != nil {
			return nil, fmt.Errorf("database: migrations: %w", err)
		}
		h := fnv.New64a()
		h.Write([]byte("latchkey-migrate:" + schema))
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64())), lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, fmt.Errorf("database: migrations: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, sqlDB, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("database: migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("database: migrate: %w", err)
	}
	var applied []int64
	for _, r := range results {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// NewID returns a new row id: a UUIDv7, so ids sort by creation time and
// index well.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// Ping checks that the database answers, for readiness probes.
func Ping(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Close closes the connection pool.
func Close(db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// PostgresDSN returns the connection string db was opened with, for a
// connection of its own (LISTEN); "" for SQLite.
func PostgresDSN(db *gorm.DB) string {
	d := db.Dialector
	if t, ok := d.(translator); ok {
		d = t.Dialector
	}
	if p, ok := d.(*postgres.Dialector); ok && p.Config != nil {
		return p.Config.DSN
	}
	return ""
}
