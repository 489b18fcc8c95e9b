package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
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
	"github.com/latchkey/latchkey/internal/rotation"
	"github.com/latchkey/latchkey/internal/secret"
)

// command is one subcommand, as the usage text shows it.
type command struct {
	name  string
	args  string // after the name, in the synopsis
	doc   string
	flags *flag.FlagSet // nil when it takes none
}

// commands lists the subcommands with the same flag sets they parse, so the
// usage text cannot drift from them.
func commands() []command {
	return []command{
		{"serve", "[-dev]", "run the server (the default command)", serveFlags(new(bool))},
		{"migrate", "", "apply database migrations and exit", nil},
		{"keys create", "-account NAME [-name LABEL]",
			"create an API key for a developer account (the account is created if it does not exist)",
			keysCreateFlags(new(string), new(string))},
		{"keygen", "", "print a new LATCHKEY_ENCRYPTION_KEYS value", nil},
		{"reencrypt", "[-dry-run] [-batch-size N]",
			"re-encrypt stored secrets with the sealing key (LATCHKEY_SEALING_KEY); resumable (see README.md)",
			reencryptFlags(new(bool), new(int))},
		{"help", "", "print this text", nil},
	}
}

// writeUsage prints the commands, their flags and the environment variables.
func writeUsage(w io.Writer) {
	fmt.Fprint(w, "usage: latchkey <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "\n  %s\n      %s\n", strings.TrimSpace(c.name+" "+c.args), c.doc)
		if c.flags == nil {
			continue
		}
		c.flags.VisitAll(func(f *flag.Flag) {
			arg, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "      -%s\n          %s", strings.TrimSpace(f.Name+" "+arg), usage)
			_, isString := f.Value.(flag.Getter).Get().(string)
			switch {
			case f.DefValue == "" || f.DefValue == "false":
			case isString:
				fmt.Fprintf(w, " (default %q)", f.DefValue)
			default:
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(w)
		})
	}
	fmt.Fprint(w, "\nenvironment (read once at start; an empty variable is unset):\n")
	for _, v := range config.Vars() {
		def := "no default"
		if v.Default != "" {
			def = "default " + v.Default
		}
		fmt.Fprintf(w, "\n  %s (%s)\n      %s\n", v.Name, def, v.Usage)
	}
}

func serveFlags(dev *bool) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.BoolVar(dev, "dev", false, "development mode: run without LATCHKEY_ENCRYPTION_KEYS, using a generated key kept in a local file")
	return fs
}

func keysCreateFlags(account, name *string) *flag.FlagSet {
	fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
	fs.StringVar(account, "account", "", "developer account `NAME` (created if missing)")
	fs.StringVar(name, "name", "default", "a `LABEL` for the key")
	return fs
}

func reencryptFlags(dryRun *bool, batch *int) *flag.FlagSet {
	fs := flag.NewFlagSet("reencrypt", flag.ContinueOnError)
	fs.BoolVar(dryRun, "dry-run", false, "count what would be re-encrypted and what cannot be decrypted; change nothing")
	fs.IntVar(batch, "batch-size", rotation.DefaultBatchSize, "`N` rows per batch; each batch is one transaction")
	return fs
}

// parse parses a command's flags. It returns flag.ErrHelp as is for -h,
// -help and --help, which run answers with the usage text; it reports other
// errors itself instead of letting the flag package print its own usage.
func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%s: %w (see 'latchkey help')", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (see 'latchkey help')", fs.Name(), fs.Arg(0))
	}
	return nil
}

// run is the whole program: main only supplies the process's arguments,
// environment and streams, so tests can run it end to end. Asking for help
// in any form prints the usage to stdout and is not an error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := runCommand(ctx, args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		writeUsage(stdout)
		return nil
	}
	return err
}

func runCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	// Each command parses its flags before reading the environment, so
	// that -h answers whatever the environment holds.
	switch cmd {
	case "serve":
		var dev bool
		fs := serveFlags(&dev)
		if err := parse(fs, args); err != nil {
			return err
		}
		cfg, err := config.FromEnv(getenv)
		if err != nil {
			return err
		}
		fs.Visit(func(*flag.Flag) { cfg.Dev = dev }) // -dev=false overrides LATCHKEY_DEV too
		return serve(ctx, cfg, stdout, stderr)
	case "migrate":
		if err := parse(flag.NewFlagSet("migrate", flag.ContinueOnError), args); err != nil {
			return err
		}
		cfg, err := config.FromEnv(getenv)
		if err != nil {
			return err
		}
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
		return keys(ctx, getenv, args, stdout, stderr)
	case "reencrypt":
		return reencrypt(ctx, getenv, args, stdout)
	case "keygen":
		if err := parse(flag.NewFlagSet("keygen", flag.ContinueOnError), args); err != nil {
			return err
		}
		b := make([]byte, secret.KeySize)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		id, err := newKeyID(time.Now(), rand.Reader)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s:%s\n", id, base64.StdEncoding.EncodeToString(b))
		return nil
	case "help":
		return flag.ErrHelp
	}
	writeUsage(stderr)
	return fmt.Errorf("unknown command %q", cmd)
}

// newKeyID names a new encryption key by its day, for people to recognise,
// and a random suffix, so keys made the same day still have distinct ids
// (a key ring refuses an id twice).
func newKeyID(now time.Time, random io.Reader) (string, error) {
	b := make([]byte, 3)
	if _, err := io.ReadFull(random, b); err != nil {
		return "", err
	}
	return "k" + now.UTC().Format("20060102") + "-" + hex.EncodeToString(b), nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func keys(ctx context.Context, getenv func(string) string, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		return flag.ErrHelp
	}
	if len(args) == 0 || args[0] != "create" {
		return errors.New("keys: want 'keys create -account NAME' (see 'latchkey help')")
	}
	var account, name string
	if err := parse(keysCreateFlags(&account, &name), args[1:]); err != nil {
		return err
	}
	if account == "" {
		return errors.New("keys create: -account is required")
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return err
	}
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer database.Close(db)
	apps := app.NewStore(db)
	acct, err := apps.EnsureAccount(ctx, account)
	if err != nil {
		return err
	}
	key, _, err := apps.CreateKey(ctx, acct.ID, name)
	if err != nil {
		return err
	}
	// The key goes to stdout alone, so scripts can capture it; it is shown
	// only this once.
	fmt.Fprintln(stdout, key)
	fmt.Fprintf(stderr, "created API key %q for account %q; it is not shown again\n", name, acct.Name)
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
	// Bind first: a port that is taken must fail the start before anything
	// is created (the SQLite file, the schema, a dev key file).
	ln, err := listen(cfg.Addr)
	if err != nil {
		return err
	}
	defer ln.Close() // for the failures below; Serve closes it otherwise
	cipher, err := loadCipher(cfg, log)
	if err != nil {
		return err
	}
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	if err := checkKeys(ctx, db, cipher); err != nil {
		database.Close(db)
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
	return runServer(ctx, srv, ln, jobs, db, cfg.ShutdownTimeout, log)
}

// runServer serves on ln and runs the background jobs until ctx ends or the
// server fails. Then it stops them in the order that keeps the database open
// for as long as anything may use it: the HTTP server (in-flight requests
// finish), the jobs (each finishes its round), and last the database, which
// it closes. All three share the shutdown timeout.
func runServer(ctx context.Context, srv *http.Server, ln net.Listener, jobs *background, db *gorm.DB, timeout time.Duration, log *slog.Logger) error {
	jobsCtx, stopJobs := context.WithCancel(ctx)
	defer stopJobs()
	jobs.start(jobsCtx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", timeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = fmt.Errorf("shutdown: %w", serr)
	}
	stopJobs()
	if werr := jobs.wait(shutdownCtx); werr != nil && err == nil {
		err = fmt.Errorf("shutdown: %w", werr)
	}
	database.Close(db)
	return err
}

// listen binds addr. Its error says which variable sets the address:
// "listen tcp :8080: bind: address already in use" alone does not.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		var sys *os.SyscallError
		if errors.As(err, &sys) {
			err = sys.Err
		}
		return nil, fmt.Errorf("listening on %s: %w (set LATCHKEY_ADDR to use another address)", addr, err)
	}
	return ln, nil
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
