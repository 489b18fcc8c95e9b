package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/dbtest"
	"github.com/latchkey/latchkey/internal/secret"
)

// envFor returns a getenv that serves vars, with the test database.
func envFor(t *testing.T, vars map[string]string) func(string) string {
	t.Helper()
	db := dbtest.Open(t)
	vars["DATABASE_URL"] = db.URL
	vars["LATCHKEY_SQLITE_PATH"] = db.SQLitePath
	return func(k string) string { return vars[k] }
}

// TestRunServesAndStops starts the whole program on a free port, uses it
// with a key made by the keys command, and stops it as a SIGTERM would.
func TestRunServesAndStops(t *testing.T) {
	getenv := envFor(t, map[string]string{
		"LATCHKEY_ADDR":            "127.0.0.1:0",
		"LATCHKEY_ENCRYPTION_KEYS": "k1:" + strings.Repeat("QUFB", 10) + "QUE=",
	})
	var keyOut, keyErr bytes.Buffer
	if err := run(context.Background(), []string{"keys", "create", "-account", "acme"}, getenv, &keyOut, &keyErr); err != nil {
		t.Fatal(err, keyErr.String())
	}
	key := strings.TrimSpace(keyOut.String())
	if !strings.HasPrefix(key, "lk_") || strings.Contains(keyErr.String(), key) {
		t.Fatalf("keys create printed %q to stdout and %q to stderr", keyOut.String(), keyErr.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, getenv, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	base := strings.TrimSpace(strings.TrimPrefix(line, "latchkey listening on "))

	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/v1/apps": 200} {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not shut down")
	}
}

// TestRunRefusesWithoutKey: serve refuses a missing or malformed key ring,
// saying so. Each case listens on a free port, so that a port in use cannot
// be the error, and has a deadline, so that a server that wrongly starts
// stops and fails the test instead of hanging it.
func TestRunRefusesWithoutKey(t *testing.T) {
	for _, tc := range []struct {
		name, keys string
		want       []string
	}{
		{"no key", "", []string{"LATCHKEY_ENCRYPTION_KEYS is not set"}},
		{"5-byte key", "k1:c2hvcnQ=", []string{"LATCHKEY_ENCRYPTION_KEYS", `"k1"`, "32"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := envFor(t, map[string]string{"LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_ENCRYPTION_KEYS": tc.keys})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := run(ctx, []string{"serve"}, getenv, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("serve started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to name %s", err, w)
				}
			}
		})
	}
}

// TestRunReportsTakenPort: serve on a port in use fails before it creates
// anything, and names the variable to change.
func TestRunReportsTakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	vars := map[string]string{"LATCHKEY_ADDR": taken.Addr().String(), "LATCHKEY_SQLITE_PATH": filepath.Join(dir, "latchkey.db")}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = run(ctx, []string{"serve", "-dev"}, func(k string) string { return vars[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "LATCHKEY_ADDR") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("serve on a taken port: err = %v, want one naming LATCHKEY_ADDR", err)
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range left {
		t.Errorf("serve on a taken port left %s behind", f.Name())
	}
}

// TestDevModeKeepsItsKey checks dev mode warns loudly and reuses the key it
// generated, so secrets stored in one run open in the next.
func TestDevModeKeepsItsKey(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"LATCHKEY_SQLITE_PATH": filepath.Join(dir, "dev.db"), "LATCHKEY_ADDR": "127.0.0.1:0"}
	getenv := func(k string) string { return vars[k] }
	for i := 0; i < 2; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		var logs bytes.Buffer
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- run(ctx, []string{"serve", "-dev"}, getenv, pw, &logs); pw.Close() }()
		if _, err := bufio.NewReader(pr).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, pr)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "DEV MODE") {
			t.Errorf("run %d: no dev mode warning in logs: %s", i, logs.String())
		}
	}
	info, err := os.Stat(filepath.Join(dir, "latchkey.dev-key"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("dev key file mode %v, want 0600", info.Mode().Perm())
	}
}

func TestCommands(t *testing.T) {
	getenv := envFor(t, map[string]string{})
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate"}, getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"keygen"}, getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	ring := strings.TrimSpace(out.String())
	keyed := func(k string) string {
		if k == "LATCHKEY_ENCRYPTION_KEYS" {
			return ring
		}
		return getenv(k)
	}
	if _, err := loadCipher(mustConfig(t, keyed), nil); err != nil {
		t.Errorf("keygen output %q is not a usable key ring: %v", ring, err)
	}
	for _, args := range [][]string{{"frobnicate"}, {"keys"}, {"keys", "create"}} {
		if err := run(context.Background(), args, getenv, io.Discard, io.Discard); err == nil {
			t.Errorf("run %v succeeded", args)
		}
	}
}

// TestHelp: every way of asking for help prints the commands, their flags
// and the environment variables with their defaults to stdout, and is not
// an error, whatever the environment holds.
func TestHelp(t *testing.T) {
	broken := func(k string) string {
		if k == "LATCHKEY_LOG_FORMAT" {
			return "yaml"
		}
		return ""
	}
	want := []string{"serve", "migrate", "keys create", "keygen", "reencrypt",
		"-dev", "-account NAME", "-name LABEL", "-dry-run", "-batch-size N"}
	for _, v := range config.Vars() {
		want = append(want, v.Name)
		if v.Default != "" {
			want = append(want, "default "+v.Default)
		}
	}
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"-help"}, {"help"},
		{"serve", "--help"}, {"serve", "-h"}, {"serve", "-dev", "-h"},
		{"migrate", "-h"}, {"keygen", "--help"},
		{"keys", "--help"}, {"keys", "help"}, {"keys", "create", "-h"},
		{"reencrypt", "-help"}, {"reencrypt", "--help"},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, broken, &out, &errOut); err != nil {
			t.Errorf("run %v: %v", args, err)
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("run %v: usage lacks %q:\n%s", args, w, out.String())
			}
		}
		if errOut.Len() > 0 {
			t.Errorf("run %v wrote to stderr: %s", args, errOut.String())
		}
	}
	// A wrong flag is still an error, named once, without a usage dump.
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"serve", "-nope"}, broken, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "-nope") || out.Len()+errOut.Len() > 0 {
		t.Errorf("serve -nope: err = %v, stdout %q, stderr %q", err, out.String(), errOut.String())
	}
}

// TestKeygenIDsDiffer: keys made the same day have different ids, so they
// can share a key ring during a rotation.
func TestKeygenIDsDiffer(t *testing.T) {
	var ring []string
	for range 2 {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"keygen"}, func(string) string { return "" }, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		ring = append(ring, strings.TrimSpace(out.String()))
	}
	keys, err := secret.ParseKeys(strings.Join(ring, ","))
	if err != nil {
		t.Fatal(err)
	}
	if keys[0].ID == keys[1].ID {
		t.Fatalf("two keygens made the same id %q", keys[0].ID)
	}
	if _, err := secret.New(keys); err != nil {
		t.Errorf("keys %q and %q cannot share a ring: %v", keys[0].ID, keys[1].ID, err)
	}
}

func mustConfig(t *testing.T, getenv func(string) string) config.Config {
	t.Helper()
	c, err := config.FromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
