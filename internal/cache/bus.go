package cache

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// Channel is the PostgreSQL notification channel of cache invalidations
// for the public schema; see ChannelOf.
const Channel = "latchkey_cache"

// ChannelOf is the notification channel of the Latchkey whose tables db
// reaches: Channel in the public schema, and one of its own in another, so
// that deployments (and tests) sharing a database in schemas of their own
// do not empty each other's caches. Notifications are database-wide.
func ChannelOf(db *gorm.DB) (string, error) {
	var schema string
	if err := db.Raw("SELECT current_schema()").Scan(&schema).Error; err != nil {
		return "", err
	}
	return channelFor(schema), nil
}

func channelFor(schema string) string {
	if schema == "" || schema == "public" {
		return Channel
	}
	var b strings.Builder
	b.WriteString(Channel + "_")
	for _, r := range strings.ToLower(schema) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 63 { // PostgreSQL's identifier length
		name = name[:63]
	}
	return name
}

// Sep joins the parts of a composite key ("installation<Sep>user").
const Sep = "\x1f"

type invalidator interface {
	Remove(key string)
	Purge()
}

// Bus carries invalidations: to the caches of this process at once, and on
// PostgreSQL to every replica's (this one's included) by NOTIFY.
type Bus struct {
	opts    Options
	log     *slog.Logger
	pg      bool
	channel string

	mu     sync.RWMutex
	topics map[string][]invalidator

	// listening is true while this process hears every change: always
	// on SQLite (one process), on PostgreSQL while LISTEN is up.
	listening atomic.Bool
}

// NewBus returns a Bus for db's replicas. On PostgreSQL nothing is cached
// until Run listens.
func NewBus(db *gorm.DB, opts Options, log *slog.Logger) *Bus {
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Minute
	}
	b := &Bus{opts: opts, log: log, pg: db.Dialector.Name() == "postgres", channel: Channel, topics: make(map[string][]invalidator)}
	b.listening.Store(!b.pg)
	if b.pg {
		if ch, err := ChannelOf(db); err != nil {
			log.Warn("cache invalidations: cannot read the current schema; using the public schema's channel", "error", err.Error())
		} else {
			b.channel = ch
		}
	}
	return b
}

func (b *Bus) register(topic string, c invalidator) {
	b.mu.Lock()
	b.topics[topic] = append(b.topics[topic], c)
	b.mu.Unlock()
}

func (b *Bus) live() bool { return b.listening.Load() }

// FlushAll is the topic that empties every cache: for changes made behind
// the stores' backs, by an operator's SQL or a test.
const FlushAll = "*"

// apply removes key ("" for all) from topic's caches in this process.
func (b *Bus) apply(topic, key string) {
	if topic == FlushAll {
		b.purgeAll()
		return
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, c := range b.topics[topic] {
		if key == "" {
			c.Purge()
		} else {
			c.Remove(key)
		}
	}
}

func (b *Bus) purgeAll() {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, cs := range b.topics {
		for _, c := range cs {
			c.Purge()
		}
	}
}

// Changed says that what topic caches under key ("" for everything) has
// changed through db. It forgets it here at once and, on PostgreSQL, sends
// a NOTIFY through db: inside a transaction it is delivered when that
// commits (and not at all if it rolls back), which also reaches this
// process again after the commit, closing the window in which a
// concurrent read could have cached the old value. A nil Bus does nothing.
func (b *Bus) Changed(db *gorm.DB, topic, key string) error {
	if b == nil {
		return nil
	}
	b.apply(topic, key)
	if !b.pg {
		return nil
	}
	return db.Exec("SELECT pg_notify(?, ?)", b.channel, topic+" "+key).Error
}

// Change is one change, for ChangedAll.
type Change struct{ Topic, Key string }

// ChangedAll is Changed for several changes at once, notified in one
// statement.
func (b *Bus) ChangedAll(db *gorm.DB, changes ...Change) error {
	if b == nil || len(changes) == 0 {
		return nil
	}
	calls := make([]string, len(changes))
	args := make([]any, 0, 2*len(changes))
	for i, c := range changes {
		b.apply(c.Topic, c.Key)
		calls[i] = "pg_notify(?, ?)"
		args = append(args, b.channel, c.Topic+" "+c.Key)
	}
	if !b.pg {
		return nil
	}
	return db.Exec("SELECT "+strings.Join(calls, ", "), args...).Error
}

// Run listens for other replicas' changes on PostgreSQL (dsn) until ctx
// ends, reconnecting with backoff. Whenever it is not listening it
// flushes every cache and keeps nothing new, since changes may be missed
// then. On SQLite it returns at once.
func (b *Bus) Run(ctx context.Context, dsn string) {
	if b == nil || !b.pg {
		return
	}
	if dsn == "" {
		// Connecting with libpq's defaults would listen on some other
		// database, and hear nothing.
		b.log.Error("cache invalidations: no PostgreSQL URL to listen with; caching stays off")
		return
	}
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := b.listen(ctx, dsn)
		b.listening.Store(false)
		b.purgeAll()
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("cache invalidations: lost the LISTEN connection; caches are flushed and off until it is back", "error", err.Error())
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait = min(wait*2, 5*time.Second)
	}
}

func (b *Bus) listen(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{b.channel}.Sanitize()); err != nil {
		return err
	}
	// Anything may have changed while this process was not listening.
	b.purgeAll()
	b.listening.Store(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		topic, key, _ := strings.Cut(n.Payload, " ")
		b.apply(topic, key)
	}
}

// Flush empties every cache of this process, for what changed behind the
// stores' backs (an operator's SQL, a test).
func (b *Bus) Flush() {
	if b != nil {
		b.purgeAll()
	}
}

// Listening reports whether caches may keep values now.
func (b *Bus) Listening() bool { return b != nil && b.live() }
