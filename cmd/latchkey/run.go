package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/app"
	"github.com/latchkey/latchkey/callback"
	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/keycheck"
	"github.com/latchkey/latchkey/internal/secret"
)

const usage = `usage: latchkey <command> [flags]

commands:
  serve [-dev]                      run the server (the default command)
  migrate                           apply database migrations and exit
  keys create -account NAME [-name LABEL]
                                    create an API key for a developer account
                                    (the account is created if it does not exist)
  keygen                            print a new LATCHKEY_ENCRYPTION_KEYS value
  reencrypt [-dry-run] [-batch-size N]
                                    re-encrypt stored secrets with the first key of
                                    LATCHKEY_ENCRYPTION_KEYS; resumable (see README.md)

configuration is read from the environment; see README.md.
`

// run is the whole program: main only supplies the process's arguments,
// environment and streams, so tests can run it end to end.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return err
	}
	switch cmd {
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(stderr)
		dev := fs.Bool("dev", cfg.Dev, "development mode: run without LATCHKEY_ENCRYPTION_KEYS, using a generated key kept in a local file")
		if err := fs.Parse(args); err != nil {
			return err
		}
		cfg.Dev = *dev
		return serve(ctx, cfg, stdout, stderr)
	case "migrate":
		log := newLogger(cfg, stderr)
		db, err := database.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath)
		if err != nil {
			return err
		}
		defer database.Close(db)
		applied, err := database.Migrate(ctx, db)
		if err != nil {
			return err
		}
		log.Info("migrations applied", "versions", applied)
		return nil
	case "keys":
		return keys(ctx, cfg, args, stdout, stderr)
	case "reencrypt":
		return reencrypt(ctx, cfg, args, stdout, stderr)
	case "keygen":
		b := make([]byte, secret.KeySize)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		id := "k" + time.Now().UTC().Format("20060102")
		fmt.Fprintf(stdout, "%s:%s\n", id, base64.StdEncoding.EncodeToString(b))
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func keys(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprint(stderr, usage)
		return errors.New("keys: want 'keys create -account NAME'")
	}
	fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	account := fs.String("account", "", "developer account name (created if missing)")
	name := fs.String("name", "default", "a label for the key")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *account == "" {
		return errors.New("keys create: -account is required")
	}
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer database.Close(db)
	apps := app.NewStore(db)
	acct, err := apps.EnsureAccount(ctx, *account)
	if err != nil {
		return err
	}
	key, _, err := apps.CreateKey(ctx, acct.ID, *name)
	if err != nil {
		return err
	}
	// The key goes to stdout alone, so scripts can capture it; it is shown
	// only this once.
	fmt.Fprintln(stdout, key)
	fmt.Fprintf(stderr, "created API key %q for account %q; it is not shown again\n", *name, acct.Name)
	return nil
}

func openMigrated(ctx context.Context, cfg config.Config) (*gorm.DB, error) {
	db, err := database.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath)
	if err != nil {
		return nil, err
	}
	if _, err := database.Migrate(ctx, db); err != nil {
		database.Close(db)
		return nil, err
	}
	return db, nil
}

func serve(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	cipher, err := loadCipher(cfg, log)
	if err != nil {
		return err
	}
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer database.Close(db)
	if err := checkKeys(ctx, db, cipher); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	handler, jobs := newServer(cfg, db, cipher, log)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	where := "sqlite:" + cfg.SQLitePath
	if cfg.DatabaseURL != "" {
		where = "postgres"
	}
	log.Info("listening", "addr", ln.Addr().String(), "database", where)
	fmt.Fprintf(stdout, "latchkey listening on http://%s\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	jobs.run(ctx)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// sweep deletes spent authorize links and states now and then. Any replica
// may run it at any time: it deletes only rows no one can use.
func sweep(ctx context.Context, s *callback.Store, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.DeleteExpired(ctx); err != nil {
				log.Warn("deleting expired OAuth states", "error", err.Error())
			}
		}
	}
}

// checkKeys refuses to serve with a key whose bytes are not those the
// database knows by its id, or without a key that seals stored values (see
// keycheck): such a server would fail every secret it reads, and seal new
// ones that no other server can open.
func checkKeys(ctx context.Context, db *gorm.DB, cipher *secret.Cipher) error {
	return keycheck.Check(ctx, db, cipher, nil, sealedColumns()...)
}

// loadCipher builds the cipher from LATCHKEY_ENCRYPTION_KEYS, sealing with
// LATCHKEY_SEALING_KEY (config defaults it to the first key). Without keys
// the server refuses to start, except in dev mode, where a key is generated
// once and kept in a file beside the SQLite database.
func loadCipher(cfg config.Config, log *slog.Logger) (*secret.Cipher, error) {
	if cfg.EncryptionKeys != "" {
		keys, err := secret.ParseKeys(cfg.EncryptionKeys)
		if err != nil {
			return nil, fmt.Errorf("LATCHKEY_ENCRYPTION_KEYS: %w", err)
		}
		c, err := secret.New(keys)
		if err != nil {
			return nil, fmt.Errorf("LATCHKEY_ENCRYPTION_KEYS: %w", err)
		}
		if cfg.SealingKey == "" {
			return c, nil
		}
		if c, err = c.WithSealingKey(cfg.SealingKey); err != nil {
			return nil, fmt.Errorf("LATCHKEY_SEALING_KEY: %w", err)
		}
		return c, nil
	}
	if !cfg.Dev {
		return nil, errors.New("LATCHKEY_ENCRYPTION_KEYS is not set: generate one with 'latchkey keygen', " +
			"or run 'latchkey serve -dev' for local development only")
	}
	path := filepath.Join(filepath.Dir(cfg.SQLitePath), "latchkey.dev-key")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b := make([]byte, secret.KeySize)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		raw = []byte("dev:" + base64.StdEncoding.EncodeToString(b))
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			return nil, fmt.Errorf("dev mode: writing %s: %w", path, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("dev mode: reading %s: %w", path, err)
	}
	keys, err := secret.ParseKeys(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("dev mode: %s: %w", path, err)
	}
	log.Warn("DEV MODE: secrets are encrypted with a key stored in plain text beside the database; "+
		"never use dev mode in production: set LATCHKEY_ENCRYPTION_KEYS instead", "key_file", path)
	return secret.New(keys)
}
