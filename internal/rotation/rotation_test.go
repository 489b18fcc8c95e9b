package rotation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/secret"
)

// The engine is tested on a table of its own, with a two-column primary key
// and a flag marking sealed rows, on SQLite and (with
// LATCHKEY_TEST_DATABASE_URL) PostgreSQL. settings and callback test their
// own columns end to end.

func cipherOf(t *testing.T, ids ...string) *secret.Cipher {
	t.Helper()
	var keys []secret.Key
	for _, id := range ids {
		keys = append(keys, secret.Key{ID: id, Secret: bytes.Repeat([]byte(id[len(id)-1:]), secret.KeySize)})
	}
	c, err := secret.New(keys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var things = Column{
	Table: "things", Keys: []string{"a", "b"}, Value: "value",
	Where: "sealed = ?", Args: []any{true},
	AAD: func(k []string) string { return "thing:" + k[0] + ":" + k[1] },
}

type fixture struct {
	t    *testing.T
	db   *dbtest.DB
	keys [][]string // primary keys of the sealed rows, in order
}

// newFixture stores n values sealed with key k1, plus one unsealed row
// whose value looks like a stale ciphertext and must be left alone.
func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	db := dbtest.Open(t)
	if err := db.Exec(`CREATE TABLE things (a text NOT NULL, b text NOT NULL, value text NOT NULL,
		sealed boolean NOT NULL, PRIMARY KEY (a, b))`).Error; err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db}
	old := cipherOf(t, "k1")
	for i := range n {
		k := []string{fmt.Sprintf("a%02d", i/2), fmt.Sprintf("b%d", i%2)}
		f.keys = append(f.keys, k)
		f.set(k, f.seal(old, k, plain(i)))
	}
	if err := db.Exec("INSERT INTO things (a, b, value, sealed) VALUES ('zz', 'plain', 'v1:k1:not-a-secret', ?)", false).Error; err != nil {
		t.Fatal(err)
	}
	return f
}

func plain(i int) string { return fmt.Sprintf("plaintext-%02d", i) }

func (f *fixture) seal(c *secret.Cipher, k []string, v string) string {
	f.t.Helper()
	s, err := c.Seal(v, things.AAD(k))
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) set(k []string, sealed string) {
	f.t.Helper()
	if err := f.db.Exec("INSERT INTO things (a, b, value, sealed) VALUES (?, ?, ?, ?) ON CONFLICT (a, b) DO UPDATE SET value = excluded.value",
		k[0], k[1], sealed, true).Error; err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) value(k []string) string {
	f.t.Helper()
	var v string
	if err := f.db.Raw("SELECT value FROM things WHERE a = ? AND b = ?", k[0], k[1]).Scan(&v).Error; err != nil {
		f.t.Fatal(err)
	}
	return v
}

// sealedWith counts the sealed rows whose value was sealed with key id.
func (f *fixture) sealedWith(id string) int {
	f.t.Helper()
	n := 0
	for _, k := range f.keys {
		if kid, _ := secret.KeyID(f.value(k)); kid == id {
			n++
		}
	}
	return n
}

// open opens row k's value with c, for row k.
func (f *fixture) open(c *secret.Cipher, k []string) (string, error) {
	return c.Open(f.value(k), things.AAD(k))
}

func (f *fixture) rotator(batch int) *Rotator {
	return &Rotator{DB: f.db.DB, Cipher: cipherOf(f.t, "k2", "k1"), BatchSize: batch}
}

func TestRotateAll(t *testing.T) {
	f := newFixture(t, 7)
	r := f.rotator(3)
	var batches []Progress
	r.Progress = func(p Progress) { batches = append(batches, p) }
	rep, err := r.Run(context.Background(), things)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Column: "things.value", Found: 7, Counts: Counts{Rotated: 7}, Done: true}
	if len(rep.Columns) != 1 || rep.Columns[0] != want || rep.KeyID != "k2" || rep.Remaining() != 0 {
		t.Fatalf("report = %+v, want one column %+v", rep, want)
	}
	if len(batches) != 3 || batches[0].Rotated != 3 || batches[2].Rotated != 7 || batches[2].Batch != 3 {
		t.Errorf("progress = %+v, want 3 batches reaching 7 rotated", batches)
	}
	onlyNew := cipherOf(t, "k2")
	for i, k := range f.keys {
		if got, err := f.open(onlyNew, k); err != nil || got != plain(i) {
			t.Errorf("row %v with k2 alone = %q, %v; want %q", k, got, err, plain(i))
		}
	}
	if got := f.value([]string{"zz", "plain"}); got != "v1:k1:not-a-secret" {
		t.Errorf("unsealed row changed to %q", got)
	}
	// Still bound to its row: a value moved to another row does not open.
	f.set(f.keys[1], f.value(f.keys[0]))
	if _, err := f.open(onlyNew, f.keys[1]); !errors.Is(err, secret.ErrOpen) {
		t.Errorf("a rotated value moved to another row opened: err = %v", err)
	}
	// Nothing left to do: a second run finds nothing.
	rep, err = f.rotator(3).Run(context.Background(), things)
	if err != nil || rep.Total() != (Counts{}) || rep.Columns[0].Found != 0 {
		t.Errorf("second run = %+v, %v; want nothing found", rep, err)
	}
}

// TestRotateMatchesKeyIDExactly: '_' is a LIKE wildcard and key ids may
// contain it; values of key "aXb" must not pass for values of key "a_b".
func TestRotateMatchesKeyIDExactly(t *testing.T) {
	f := newFixture(t, 0)
	k := []string{"a", "b"}
	f.keys = [][]string{k}
	f.set(k, f.seal(cipherOf(t, "aXb"), k, "v"))
	r := f.rotator(10)
	r.Cipher = cipherOf(t, "a_b", "aXb")
	if rep, err := r.Run(context.Background(), things); err != nil || rep.Total().Rotated != 1 {
		t.Fatalf("Run = %+v, %v; want 1 rotated", rep, err)
	}
	if f.sealedWith("a_b") != 1 {
		t.Fatalf("value = %q, want sealed with a_b", f.value(k))
	}
}

func TestRotateInterruptedAndResumed(t *testing.T) {
	f := newFixture(t, 7)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := f.rotator(3)
	r.Progress = func(p Progress) {
		if p.Batch == 1 {
			cancel() // as Ctrl-C would, between two batches
		}
	}
	rep, err := r.Run(ctx, things)
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run err = %v, want ErrInterrupted wrapping context.Canceled", err)
	}
	if rep.Columns[0].Done {
		t.Error("an interrupted column is reported done")
	}
	if rep.Total().Rotated != 3 || f.sealedWith("k2") != 3 || f.sealedWith("k1") != 4 {
		t.Fatalf("after interruption: report %+v, %d rows k2, %d k1; want 3 and 4", rep.Total(), f.sealedWith("k2"), f.sealedWith("k1"))
	}
	// Every value still opens with the ring meanwhile.
	ring := cipherOf(t, "k2", "k1")
	for i, k := range f.keys {
		if got, err := f.open(ring, k); err != nil || got != plain(i) {
			t.Fatalf("row %v during rotation = %q, %v", k, got, err)
		}
	}
	rep, err = f.rotator(3).Run(context.Background(), things)
	if err != nil || rep.Columns[0].Found != 4 || rep.Total().Rotated != 4 || rep.Remaining() != 0 {
		t.Fatalf("resumed run = %+v, %v; want 4 found and rotated, 0 remaining", rep, err)
	}
	if f.sealedWith("k2") != 7 {
		t.Fatalf("%d of 7 rows sealed with k2 after resuming", f.sealedWith("k2"))
	}
}

// TestRotateRollsBackInterruptedBatch stops a run in the middle of a
// batch's transaction: the batch's rows already updated are rolled back.
func TestRotateRollsBackInterruptedBatch(t *testing.T) {
	f := newFixture(t, 7)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := f.rotator(3)
	r.beforeUpdate = func(_ Column, batch, i int) {
		if batch == 2 && i == 1 { // the batch's first row is updated, in the transaction
			cancel()
		}
	}
	rep, err := r.Run(ctx, things)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run err = %v, want ErrInterrupted", err)
	}
	if rep.Total().Rotated != 3 || f.sealedWith("k2") != 3 {
		t.Fatalf("after interruption: report %+v, %d rows sealed with k2; want 3 (batch 2 rolled back)", rep.Total(), f.sealedWith("k2"))
	}
	if kid, _ := secret.KeyID(f.value(f.keys[3])); kid != "k1" {
		t.Fatalf("first row of the interrupted batch is sealed with %q, want k1 (rolled back)", kid)
	}
	// On PostgreSQL the interrupted transaction may still hold its rows a
	// moment after the cancel (its rollback is the server's), and the
	// rotator skips rows another transaction holds, reporting them as
	// remaining: rerun, as an operator would, until none remain.
	for attempt := 1; ; attempt++ {
		rep, err := f.rotator(3).Run(context.Background(), things)
		if err != nil {
			t.Fatalf("resumed run: %v", err)
		}
		if rep.Remaining() == 0 {
			break
		}
		if attempt == 50 {
			t.Fatalf("%d values still remain after 50 runs", rep.Remaining())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if f.sealedWith("k2") != 7 {
		t.Fatalf("%d of 7 rows sealed with k2 after resuming", f.sealedWith("k2"))
	}
}

// TestRotateKeepsConcurrentWrites writes rows from another connection pool,
// as a server would, between the rotator's read and its write.
func TestRotateKeepsConcurrentWrites(t *testing.T) {
	f := newFixture(t, 7)
	server := f.db.Reopen(t)
	oldServer, newServer := cipherOf(t, "k1"), cipherOf(t, "k2", "k1")
	r := f.rotator(3)
	r.beforeWrite = func(_ Column, batch int) {
		if batch != 1 {
			return
		}
		// A server not yet restarted with the new key, one that was, and
		// a deletion.
		exec := func(q string, args ...any) {
			if err := server.Exec(q, args...).Error; err != nil {
				t.Fatal(err)
			}
		}
		exec("UPDATE things SET value = ? WHERE a = ? AND b = ?", f.seal(oldServer, f.keys[0], "written-0"), f.keys[0][0], f.keys[0][1])
		exec("UPDATE things SET value = ? WHERE a = ? AND b = ?", f.seal(newServer, f.keys[1], "written-1"), f.keys[1][0], f.keys[1][1])
		exec("DELETE FROM things WHERE a = ? AND b = ?", f.keys[2][0], f.keys[2][1])
	}
	rep, err := r.Run(context.Background(), things)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rep.Columns[0].Counts, (Counts{Rotated: 4, Conflicts: 3}); got != want {
		t.Fatalf("counts = %+v, want %+v", got, want)
	}
	// The value stored meanwhile with the old key is still to do.
	if rep.Remaining() != 1 {
		t.Fatalf("remaining = %d, want 1", rep.Remaining())
	}
	ring := cipherOf(t, "k2", "k1")
	for i, want := range []string{"written-0", "written-1"} {
		if got, err := f.open(ring, f.keys[i]); err != nil || got != want {
			t.Errorf("row %v = %q, %v; want the concurrent write %q", f.keys[i], got, err, want)
		}
	}
	var n int64
	f.db.Raw("SELECT COUNT(*) FROM things WHERE a = ? AND b = ?", f.keys[2][0], f.keys[2][1]).Scan(&n)
	if n != 0 {
		t.Error("a row deleted during rotation came back")
	}
	rep, err = f.rotator(3).Run(context.Background(), things)
	if err != nil || rep.Total().Rotated != 1 || rep.Remaining() != 0 {
		t.Fatalf("second run = %+v, %v; want 1 rotated, 0 remaining", rep, err)
	}
	if got, err := f.open(cipherOf(t, "k2"), f.keys[0]); err != nil || got != "written-0" {
		t.Errorf("row %v after second run = %q, %v; want written-0", f.keys[0], got, err)
	}
}

// TestRotateReportsUndecryptable: values no key opens are reported by row,
// without their content, and every other value is still rotated.
func TestRotateReportsUndecryptable(t *testing.T) {
	f := newFixture(t, 7)
	f.set(f.keys[1], f.seal(cipherOf(t, "k3"), f.keys[1], "lost-key"))
	f.set(f.keys[4], f.value(f.keys[5])) // moved from another row
	f.set(f.keys[6], "garbage")
	for _, dryRun := range []bool{true, false} {
		before := make([]string, len(f.keys))
		for i, k := range f.keys {
			before[i] = f.value(k)
		}
		r := f.rotator(2)
		r.DryRun = dryRun
		var failures []Failure
		r.Failed = func(x Failure) { failures = append(failures, x) }
		rep, err := r.Run(context.Background(), things)
		if !errors.Is(err, ErrUndecryptable) {
			t.Fatalf("dry run %v: err = %v, want ErrUndecryptable", dryRun, err)
		}
		if got, want := rep.Total(), (Counts{Rotated: 4, Failed: 3}); got != want {
			t.Errorf("dry run %v: counts %+v, want %+v", dryRun, got, want)
		}
		wantRows := []string{`a="a00" b="b1"`, `a="a02" b="b0"`, `a="a03" b="b0"`}
		if len(failures) != 3 {
			t.Fatalf("dry run %v: failures %+v, want rows %v", dryRun, failures, wantRows)
		}
		for i, x := range failures {
			if x.Column != "things.value" || x.Row != wantRows[i] {
				t.Errorf("failure %d = %+v, want things.value %s", i, x, wantRows[i])
			}
		}
		report := fmt.Sprintf("%v %+v %+v", err, rep, failures)
		for i, v := range before {
			if strings.Contains(report, v) || strings.Contains(report, plain(i)) {
				t.Errorf("the report contains row %d's value", i)
			}
		}
		changed := 0
		for i, k := range f.keys {
			if f.value(k) != before[i] {
				changed++
			}
		}
		switch {
		case dryRun && (changed != 0 || rep.Remaining() != 7):
			t.Errorf("dry run changed %d rows, remaining %d; want 0 and 7", changed, rep.Remaining())
		case !dryRun && (changed != 4 || rep.Remaining() != 3):
			t.Errorf("run changed %d rows, remaining %d; want 4 and 3", changed, rep.Remaining())
		}
	}
	onlyNew := cipherOf(t, "k2")
	for _, i := range []int{0, 2, 3, 5} {
		if got, err := f.open(onlyNew, f.keys[i]); err != nil || got != plain(i) {
			t.Errorf("row %v = %q, %v; want %q", f.keys[i], got, err, plain(i))
		}
	}
}

func TestColumnCheck(t *testing.T) {
	bad := things
	bad.Table = "things; DROP TABLE things"
	if _, err := (&Rotator{Cipher: cipherOf(t, "k1")}).Run(context.Background(), bad); err == nil {
		t.Error("Run accepted a table name that is not an identifier")
	}
}

// TestRotateNeverWaitsOnRowLocks: on PostgreSQL, a row locked by a server's
// open transaction is passed over (a conflict) instead of waited for, so the
// rotator cannot deadlock with a server writing several rows.
func TestRotateNeverWaitsOnRowLocks(t *testing.T) {
	f := newFixture(t, 7)
	if database.Dialect(f.db.DB) != database.Postgres {
		t.Skip("row locks: PostgreSQL only (SQLite locks the whole database)")
	}
	server := f.db.Reopen(t).Begin()
	defer server.Rollback()
	k := f.keys[4]
	if err := server.Exec("UPDATE things SET value = ? WHERE a = ? AND b = ?", f.seal(cipherOf(t, "k2"), k, "written"), k[0], k[1]).Error; err != nil {
		t.Fatal(err)
	}
	type result struct {
		rep Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := f.rotator(3).Run(context.Background(), things)
		done <- result{rep, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		server.Rollback()
		t.Fatal("the rotator waited for a row lock held by another transaction")
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	if got, want := res.rep.Columns[0].Counts, (Counts{Rotated: 6, Conflicts: 1}); got != want || res.rep.Remaining() != 1 {
		t.Fatalf("counts = %+v, remaining %d; want %+v, 1", got, res.rep.Remaining(), want)
	}
	if err := server.Commit().Error; err != nil {
		t.Fatal(err)
	}
	if got, err := f.open(cipherOf(t, "k2"), k); err != nil || got != "written" {
		t.Fatalf("locked row = %q, %v; want the server's write", got, err)
	}
	if f.sealedWith("k2") != 7 {
		t.Fatalf("%d of 7 rows sealed with k2", f.sealedWith("k2"))
	}
}
