package deploy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/distribution/reference"

	"github.com/latchkey/latchkey/internal/config"
)

// The tests in this package read the deployment files of this folder, check
// them with the parsers their tools use, and then check what Latchkey needs
// of them. Each area has two tests: one on the files as they are, and one
// that breaks a copy of a file in a known way and wants the checks to say
// so, so that a check cannot quietly stop checking.
//
// Checks return every problem they find, each naming the file, the object
// and the field, rather than stopping at the first.

// appPort is the port the server listens on in every deployment here:
// LATCHKEY_ADDR's default, the image's EXPOSE, the containerPort.
const appPort = 8080

// problems collects what the checks find.
type problems []error

func (p *problems) add(where, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
}

// readFile reads a file of this folder.
func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goVersion is go.mod's go line, the oldest Go that builds the module.
func goVersion(t *testing.T) string {
	t.Helper()
	for line := range strings.Lines(string(readFile(t, "../go.mod"))) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return v
		}
	}
	t.Fatal("../go.mod has no go line")
	return ""
}

// reportAll fails the test with one line per problem.
func reportAll(t *testing.T, ps []error) {
	t.Helper()
	for _, p := range ps {
		t.Error(p)
	}
}

// mutate returns b with every old replaced by new. It fails the test if old
// does not occur, so that a mutation table cannot go stale unnoticed when
// the file it breaks is edited.
func mutate(t *testing.T, file string, b []byte, old, new string) []byte {
	t.Helper()
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s no longer contains %q: update the mutation", file, old)
	}
	return []byte(strings.ReplaceAll(string(b), old, new))
}

// wantProblem fails the test unless one of ps mentions want.
func wantProblem(t *testing.T, ps []error, want string) {
	t.Helper()
	if slices.ContainsFunc(ps, func(err error) bool { return strings.Contains(err.Error(), want) }) {
		return
	}
	t.Errorf("the checks did not report %q; they reported:\n%v", want, errors.Join(ps...))
}

// checkImage returns an error unless ref is an image reference pinned to a
// tag other than latest, or to a digest: an unpinned image changes under a
// deployment without anyone changing its files.
func checkImage(ref string) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("image %q: %v", ref, err)
	}
	if _, ok := named.(reference.Digested); ok {
		return nil
	}
	tagged, ok := named.(reference.Tagged)
	if !ok {
		return fmt.Errorf("image %q has no tag, which means latest: pin a version", ref)
	}
	if tagged.Tag() == "latest" {
		return fmt.Errorf("image %q uses the latest tag: pin a version", ref)
	}
	return nil
}

// checkConfig runs Latchkey's own configuration parser on the environment a
// deployment gives the server, so a value the server would refuse at start
// (a malformed duration, a public URL without a scheme) fails here. It also
// rejects dev mode and the embedded SQLite database, which in a container
// would be a file that dies with it.
func checkConfig(p *problems, where string, env map[string]string) config.Config {
	cfg, err := config.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		p.add(where, "the server would refuse this environment: %v", err)
		return cfg
	}
	if cfg.Dev {
		p.add(where, "LATCHKEY_DEV turns on dev mode, which makes up an encryption key and keeps it in a local file; never in a deployment")
	}
	if cfg.DatabaseURL == "" {
		p.add(where, "DATABASE_URL is not set, so the server would use an embedded SQLite file inside the container")
	}
	if _, port, err := net.SplitHostPort(cfg.Addr); err != nil || port != fmt.Sprint(appPort) {
		p.add(where, "LATCHKEY_ADDR is %q; every file here expects port %d", cfg.Addr, appPort)
	}
	return cfg
}

// checkNoDevFlag reports a -dev flag in a container's command line.
func checkNoDevFlag(p *problems, where string, args []string) {
	for _, a := range args {
		if a == "-dev" || a == "--dev" || strings.HasPrefix(a, "-dev=") || strings.HasPrefix(a, "--dev=") {
			p.add(where, "the command line %q turns on dev mode; never in a deployment", args)
		}
	}
}
