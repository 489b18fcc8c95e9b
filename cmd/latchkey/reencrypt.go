package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/callback"
	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/keycheck"
	"github.com/latchkey/latchkey/internal/rotation"
	"github.com/latchkey/latchkey/settings"
)

// sealedColumns is every column that holds sealed values. A package that
// starts sealing values must add its columns here: the old key can leave
// the ring only once reencrypt has re-sealed all of them.
func sealedColumns() []rotation.Column {
	return slices.Concat(settings.SealedColumns(), callback.SealedColumns(), app.SealedColumns())
}

// reencrypt re-seals every stored secret that was not sealed with the
// sealing key (LATCHKEY_SEALING_KEY, by default the first key of
// LATCHKEY_ENCRYPTION_KEYS) with that key (see rotation.Rotator). It
// prints counts, never values, and fails when it is interrupted, when
// values cannot be decrypted, or when values are still not sealed with the
// sealing key at the end, so that success means the old keys can go.
//
// It is named reencrypt rather than "keys rotate": the keys command manages
// API keys, and this changes no key, only the stored data.
func reencrypt(ctx context.Context, getenv func(string) string, args []string, stdout io.Writer) error {
	var dryRun bool
	var batch int
	if err := parse(reencryptFlags(&dryRun, &batch), args); err != nil {
		return err
	}
	if batch < 1 {
		return errors.New("reencrypt: -batch-size must be at least 1")
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return err
	}
	if cfg.EncryptionKeys == "" {
		return errors.New("reencrypt: LATCHKEY_ENCRYPTION_KEYS is not set: give it the servers' keys, old and new, " +
			"and LATCHKEY_SEALING_KEY the new key's id, as the servers have them")
	}
	cipher, err := loadCipher(cfg, nil)
	if err != nil {
		return err
	}
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer database.Close(db)
	// Re-sealing with a key whose bytes are not those the servers have
	// would make values no server can open: check the keys first. A dry
	// run writes nothing, so it only checks the keys that have a check
	// value.
	if dryRun {
		unchecked, err := keycheck.VerifyStored(ctx, db, cipher)
		if err != nil {
			return fmt.Errorf("reencrypt: %w", err)
		}
		for _, id := range unchecked {
			fmt.Fprintf(stdout, "key %q has not been used by a server yet: its check value will be stored by a server, or by a run without -dry-run\n", id)
		}
	} else if err := keycheck.Verify(ctx, db, cipher, nil); err != nil {
		return fmt.Errorf("reencrypt: %w", err)
	}

	r := &rotation.Rotator{
		DB: db, Cipher: cipher, BatchSize: batch, DryRun: dryRun,
		Progress: func(p rotation.Progress) {
			fmt.Fprintf(stdout, "%s: batch %d: %d of %d %s, %d changed meanwhile, %d cannot be decrypted (%s)\n",
				p.Column, p.Batch, p.Rotated, p.Found, verb(dryRun), p.Conflicts, p.Failed, p.Elapsed.Round(time.Millisecond))
		},
		Failed: func(f rotation.Failure) {
			fmt.Fprintf(stdout, "%s: cannot be decrypted with any configured key: %s\n", f.Column, f.Row)
		},
	}
	mode := ""
	if dryRun {
		mode = " (dry run: nothing is written)"
	}
	fmt.Fprintf(stdout, "re-encrypting stored secrets with key %q in batches of %d%s\n", cipher.CurrentKeyID(), batch, mode)
	rep, err := r.Run(ctx, sealedColumns()...)
	summarize(stdout, rep)
	switch {
	case errors.Is(err, rotation.ErrInterrupted):
		return fmt.Errorf("reencrypt: interrupted: any batch in progress was rolled back, and the %d value(s) re-encrypted before it are kept; "+
			"every value still decrypts with the keys configured; run 'latchkey reencrypt' again to resume", rep.Total().Rotated)
	case errors.Is(err, rotation.ErrUndecryptable):
		return fmt.Errorf("reencrypt: %d value(s) cannot be decrypted with any key of LATCHKEY_ENCRYPTION_KEYS (rows listed above); "+
			"they were left as they are, and every other value was processed", rep.Total().Failed)
	case err != nil:
		return fmt.Errorf("reencrypt: %w", err)
	case !dryRun && rep.Remaining() > 0:
		// No failures, so these were written meanwhile by a server that
		// still seals with an old key.
		return fmt.Errorf("reencrypt: %d value(s) were written meanwhile with another key than %q; "+
			"restart every server with LATCHKEY_SEALING_KEY=%s first, then run 'latchkey reencrypt' again",
			rep.Remaining(), rep.KeyID, rep.KeyID)
	}
	if !dryRun {
		fmt.Fprintf(stdout, "every stored secret is sealed with %q: the other keys may now be removed from LATCHKEY_ENCRYPTION_KEYS\n", rep.KeyID)
	}
	return nil
}

func verb(dryRun bool) string {
	if dryRun {
		return "would be re-encrypted"
	}
	return "re-encrypted"
}

// summarize prints one line per column and the totals.
func summarize(w io.Writer, rep rotation.Report) {
	finished := true
	for _, c := range rep.Columns {
		remaining := fmt.Sprintf("%d remaining", c.Remaining)
		if !c.Done {
			finished, remaining = false, "stopped before the end"
		}
		fmt.Fprintf(w, "%s: %d found not sealed with %q, %d %s, %d changed meanwhile, %d cannot be decrypted, %s\n",
			c.Column, c.Found, rep.KeyID, c.Rotated, verb(rep.DryRun), c.Conflicts, c.Failed, remaining)
	}
	t := rep.Total()
	remaining := fmt.Sprintf("%d remaining not sealed with %q", rep.Remaining(), rep.KeyID)
	if !finished {
		remaining = "not finished"
	}
	fmt.Fprintf(w, "total: %d %s, %d changed meanwhile, %d cannot be decrypted, %s, in %s\n",
		t.Rotated, verb(rep.DryRun), t.Conflicts, t.Failed, remaining, rep.Elapsed.Round(time.Millisecond))
}
