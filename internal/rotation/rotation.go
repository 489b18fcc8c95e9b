// Package rotation re-seals stored secrets with the current encryption key,
// so that an old key can then leave LATCHKEY_ENCRYPTION_KEYS.
//
// Each feature package names the columns it seals and how it binds a row's
// value to the row (settings.SealedColumns, callback.SealedColumns); a
// Rotator walks those columns in batches, opens each value that was not
// sealed with the current key with whichever key of the ring sealed it, and
// seals it again with the current key and the same associated data.
//
// A run can stop at any moment and be run again. Each batch is written in
// its own transaction, so a stopped run leaves every value either as it was
// or re-sealed, both of which open with the ring; and a second run skips the
// values already re-sealed, since it selects values by their key id. It is
// safe while servers write values: a row is updated only if it still holds
// the ciphertext that was read (compare-and-swap), so a value a server wrote
// in between is never overwritten with stale data; and on PostgreSQL, rows
// a server's transaction has locked are passed over, never waited for.
package rotation

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/secret"
)

// DefaultBatchSize is how many rows a batch reads and re-seals, in one
// transaction, when Rotator.BatchSize is zero.
const DefaultBatchSize = 500

var (
	// ErrInterrupted is returned (wrapping the context's error) when the
	// context ends during a run. The batch in progress, if any, was rolled
	// back; the batches before it are stored. Running again resumes.
	ErrInterrupted = errors.New("rotation: interrupted")
	// ErrUndecryptable is returned at the end of a run that found values
	// no key of the ring opens. They were reported to Rotator.Failed and
	// left as they are; every other value was still processed.
	ErrUndecryptable = errors.New("rotation: some values cannot be decrypted with any configured key")
)

// Column is a column of sealed values in a table.
type Column struct {
	Table string
	// Keys are the table's primary key columns, in order. Rows are read
	// in this order, and failures are reported by these values.
	Keys []string
	// Value is the column holding the sealed value.
	Value string
	// Where, if set, is an SQL condition (with ? placeholders for Args)
	// selecting the rows whose Value is sealed, such as "encrypted = ?".
	Where string
	Args  []any
	// AAD returns the associated data the value of the row with these
	// primary key values was sealed with (in the order of Keys).
	AAD func(key []string) string
}

// Name is "table.column", as reports show it.
func (c Column) Name() string { return c.Table + "." + c.Value }

// Counts says what a run did to one column's values that were not sealed
// with the current key.
type Counts struct {
	Rotated int64 // re-sealed with the current key (on a dry run: would be)
	// Conflicts changed or disappeared between being read and written, or
	// (PostgreSQL) were locked by a writer's open transaction: they were
	// left as that writer leaves them. Run again to re-seal those that a
	// writer sealed with an old key (Result.Remaining says how many).
	Conflicts int64
	Failed    int64 // no key of the ring opens them; left as they are
}

func (c *Counts) add(o Counts) {
	c.Rotated += o.Rotated
	c.Conflicts += o.Conflicts
	c.Failed += o.Failed
}

// Progress is what a Rotator reports after each batch.
type Progress struct {
	Column  string
	Batch   int   // 1, 2, ... within the column
	Found   int64 // values not sealed with the current key when the column was started
	Counts        // so far, for this column
	Elapsed time.Duration
}

// Failure names a value that no key of the ring opens: its column and its
// row's primary key, never the value.
type Failure struct {
	Column string
	Row    string // e.g. `installation_id="…" key="client_secret"`
}

// Result is what a run did to one column.
type Result struct {
	Column string
	Found  int64 // values not sealed with the current key when the column was started
	Counts
	// Done says the column was walked to its end; Remaining is counted
	// only then.
	Done bool
	// Remaining is how many values were still not sealed with the current
	// key when the column was done: failures, and values that a writer
	// still using an old primary key stored meanwhile. An old key may
	// leave the ring only when every column is Done with Remaining 0.
	Remaining int64
}

// Report is what a run did.
type Report struct {
	KeyID   string // the current key, which values are re-sealed with
	DryRun  bool
	Columns []Result
	Elapsed time.Duration
}

// Total sums the counts of every column.
func (r Report) Total() Counts {
	var t Counts
	for _, c := range r.Columns {
		t.add(c.Counts)
	}
	return t
}

// Remaining sums the Remaining of every column. It means something only
// when Run did not return ErrInterrupted or a database error: see
// Result.Done.
func (r Report) Remaining() int64 {
	var n int64
	for _, c := range r.Columns {
		n += c.Remaining
	}
	return n
}

// Rotator re-seals the values of columns with Cipher's current key.
type Rotator struct {
	DB     *gorm.DB
	Cipher *secret.Cipher
	// BatchSize is how many rows one transaction re-seals; 0 means
	// DefaultBatchSize.
	BatchSize int
	// DryRun reads and opens values and counts what would change, but
	// writes nothing.
	DryRun bool
	// Now is the clock for Elapsed; nil means time.Now.
	Now func() time.Time
	// Progress, if set, is called after each batch.
	Progress func(Progress)
	// Failed, if set, is called for each value that no key opens.
	Failed func(Failure)

	// Test hooks: beforeWrite runs between reading a batch and writing
	// it; beforeUpdate before each UPDATE inside the batch's transaction.
	beforeWrite  func(c Column, batch int)
	beforeUpdate func(c Column, batch, i int)
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Run re-seals, column after column, every value not sealed with the
// current key, and reports what it did, also when it returns an error.
//
// It returns an error before doing anything if a column is malformed;
// ErrInterrupted (wrapping ctx.Err()) if ctx ends first; ErrUndecryptable,
// after processing every other value, if some values cannot be opened; and
// otherwise the first database error, wrapped with the column's name.
// Errors never contain values.
func (r *Rotator) Run(ctx context.Context, columns ...Column) (Report, error) {
	now := r.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	rep := Report{KeyID: r.Cipher.CurrentKeyID(), DryRun: r.DryRun}
	for _, c := range columns {
		if err := c.check(); err != nil {
			return rep, err
		}
	}
	for _, c := range columns {
		res, err := r.column(ctx, c, func() time.Duration { return now().Sub(start) })
		rep.Columns = append(rep.Columns, res)
		rep.Elapsed = now().Sub(start)
		if err != nil {
			return rep, err
		}
	}
	if rep.Total().Failed > 0 {
		return rep, fmt.Errorf("%w: %d value(s)", ErrUndecryptable, rep.Total().Failed)
	}
	return rep, nil
}

func (c Column) check() error {
	ids := append([]string{c.Table, c.Value}, c.Keys...)
	for _, id := range ids {
		if !identifier.MatchString(id) {
			return fmt.Errorf("rotation: %q is not a plain SQL identifier", id)
		}
	}
	if len(c.Keys) == 0 || c.AAD == nil {
		return fmt.Errorf("rotation: column %s needs Keys and AAD", c.Name())
	}
	return nil
}

type row struct {
	key   []string
	value string
}

type update struct {
	row
	sealed string
}

func (r *Rotator) column(ctx context.Context, c Column, elapsed func() time.Duration) (Result, error) {
	res := Result{Column: c.Name()}
	size := r.BatchSize
	if size <= 0 {
		size = DefaultBatchSize
	}
	interrupted := func(err error) (Result, error) {
		return res, fmt.Errorf("%w while rotating %s: %w", ErrInterrupted, c.Name(), err)
	}
	failed := func(err error) (Result, error) {
		if ctx.Err() != nil {
			return interrupted(ctx.Err())
		}
		return res, fmt.Errorf("rotation: %s: %w", c.Name(), err)
	}

	var err error
	if res.Found, err = r.count(ctx, c); err != nil {
		return failed(err)
	}
	// The cursor walks the primary key, so values that fail or conflict
	// are passed over once instead of being read again and again.
	var cursor []string
	for batch := 1; ; batch++ {
		if err := ctx.Err(); err != nil {
			return interrupted(err)
		}
		rows, err := r.read(ctx, c, cursor, size)
		if err != nil {
			return failed(err)
		}
		if len(rows) == 0 {
			break
		}
		cursor = rows[len(rows)-1].key

		var done Counts
		updates := make([]update, 0, len(rows))
		for _, rw := range rows {
			sealed, err := r.Cipher.Reseal(rw.value, c.AAD(rw.key))
			if errors.Is(err, secret.ErrOpen) {
				done.Failed++
				if r.Failed != nil {
					r.Failed(Failure{Column: c.Name(), Row: c.describe(rw.key)})
				}
				continue
			}
			if err != nil {
				return failed(err)
			}
			updates = append(updates, update{row: rw, sealed: sealed})
		}
		if r.DryRun {
			done.Rotated = int64(len(updates))
		} else {
			if r.beforeWrite != nil {
				r.beforeWrite(c, batch)
			}
			written, err := r.write(ctx, c, batch, updates)
			if err != nil {
				return failed(err)
			}
			done.Rotated, done.Conflicts = written.Rotated, written.Conflicts
		}
		res.add(done)
		if r.Progress != nil {
			r.Progress(Progress{Column: c.Name(), Batch: batch, Found: res.Found, Counts: res.Counts, Elapsed: elapsed()})
		}
		if len(rows) < size {
			break
		}
	}
	if res.Remaining, err = r.count(ctx, c); err != nil {
		return failed(err)
	}
	res.Done = true
	return res, nil
}

// stale is the condition selecting the column's sealed values that were
// not sealed with the current key, with its arguments.
func (r *Rotator) stale(c Column) (string, []any) {
	return c.notSealedWith(r.Cipher.CurrentKeyID())
}

// notSealedWith is the condition selecting the column's sealed values that
// were sealed with none of the keys ids, with its arguments. Prefixes are
// compared exactly: LIKE treats '_', which key ids may hold, as a wildcard,
// and in SQLite ignores case.
func (c Column) notSealedWith(ids ...string) (string, []any) {
	var conds []string
	var args []any
	if c.Where != "" {
		conds = append(conds, "("+c.Where+")")
		args = append(args, c.Args...)
	}
	for _, id := range ids {
		prefix := secret.Prefix(id)
		conds = append(conds, "substr("+c.Value+", 1, "+strconv.Itoa(len(prefix))+") <> ?")
		args = append(args, prefix)
	}
	if len(conds) == 0 {
		return "1 = 1", nil
	}
	return strings.Join(conds, " AND "), args
}

func (r *Rotator) count(ctx context.Context, c Column) (int64, error) {
	cond, args := r.stale(c)
	var n int64
	err := r.DB.WithContext(ctx).Raw("SELECT COUNT(*) FROM "+c.Table+" WHERE "+cond, args...).Scan(&n).Error
	return n, err
}

// read returns up to limit stale rows after cursor in primary key order.
func (r *Rotator) read(ctx context.Context, c Column, cursor []string, limit int) ([]row, error) {
	cond, args := r.stale(c)
	return readRows(ctx, r.DB, c, cond, args, cursor, limit)
}

// readRows returns up to limit rows of c that match cond, after cursor in
// primary key order.
func readRows(ctx context.Context, db *gorm.DB, c Column, cond string, args []any, cursor []string, limit int) ([]row, error) {
	keys := strings.Join(c.Keys, ", ")
	if cursor != nil {
		// A row-value comparison, which PostgreSQL and SQLite (3.15+) both
		// answer from the primary key index.
		cond += " AND (" + keys + ") > (" + placeholders(len(c.Keys)) + ")"
		for _, k := range cursor {
			args = append(args, k)
		}
	}
	q := "SELECT " + keys + ", " + c.Value + " FROM " + c.Table + " WHERE " + cond +
		" ORDER BY " + keys + " LIMIT " + strconv.Itoa(limit)
	rs, err := db.WithContext(ctx).Raw(q, args...).Rows()
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		rw := row{key: make([]string, len(c.Keys))}
		dest := make([]any, 0, len(c.Keys)+1)
		for i := range rw.key {
			dest = append(dest, &rw.key[i])
		}
		dest = append(dest, &rw.value)
		if err := rs.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, rw)
	}
	return out, rs.Err()
}

// write stores one batch in one transaction. Each UPDATE matches the row by
// its primary key and by the ciphertext that was read, so a value written
// meanwhile is left alone and counted as a conflict. A context that ends
// before the commit rolls the whole batch back.
//
// On PostgreSQL the batch first locks its rows with SKIP LOCKED, and rows a
// server's transaction holds are conflicts too: the rotator never waits on
// a row lock, so it can be in no deadlock with a server transaction that
// writes several values (the refresh of a token pair), which PostgreSQL
// would break by aborting one of them, perhaps the server's.
func (r *Rotator) write(ctx context.Context, c Column, batch int, updates []update) (Counts, error) {
	var done Counts
	if len(updates) == 0 {
		return done, nil
	}
	q := "UPDATE " + c.Table + " SET " + c.Value + " = ? WHERE "
	for _, k := range c.Keys {
		q += k + " = ? AND "
	}
	q += c.Value + " = ?"
	err := r.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		done = Counts{}
		var locked map[string]bool
		if database.Dialect(tx) == database.Postgres {
			var err error
			if locked, err = lock(tx, c, updates); err != nil {
				return err
			}
		}
		for i, u := range updates {
			if locked != nil && !locked[strings.Join(u.key, "\x00")] {
				done.Conflicts++
				continue
			}
			if r.beforeUpdate != nil {
				r.beforeUpdate(c, batch, i)
			}
			args := make([]any, 0, len(u.key)+2)
			args = append(args, u.sealed)
			for _, k := range u.key {
				args = append(args, k)
			}
			args = append(args, u.value)
			res := tx.Exec(q, args...)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 1 {
				done.Rotated++
			} else {
				done.Conflicts++
			}
		}
		return ctx.Err()
	})
	return done, err
}

// lock locks the rows of updates that no other transaction holds, and
// returns their primary keys (joined with NUL).
func lock(tx *gorm.DB, c Column, updates []update) (map[string]bool, error) {
	keys := strings.Join(c.Keys, ", ")
	tuple := "(" + placeholders(len(c.Keys)) + ")"
	var args []any
	for _, u := range updates {
		for _, k := range u.key {
			args = append(args, k)
		}
	}
	q := "SELECT " + keys + " FROM " + c.Table + " WHERE (" + keys + ") IN (" +
		strings.TrimSuffix(strings.Repeat(tuple+", ", len(updates)), ", ") + ") FOR UPDATE SKIP LOCKED"
	rs, err := tx.Raw(q, args...).Rows()
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	locked := make(map[string]bool, len(updates))
	for rs.Next() {
		key := make([]string, len(c.Keys))
		dest := make([]any, len(key))
		for i := range key {
			dest[i] = &key[i]
		}
		if err := rs.Scan(dest...); err != nil {
			return nil, err
		}
		locked[strings.Join(key, "\x00")] = true
	}
	return locked, rs.Err()
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// describe names a row by its primary key, quoted since ids are opaque.
func (c Column) describe(key []string) string {
	parts := make([]string, len(key))
	for i, k := range key {
		parts[i] = c.Keys[i] + "=" + strconv.Quote(k)
	}
	return strings.Join(parts, " ")
}
