package deploy

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeEnv is what a user exports before `docker compose up`: the
// variables compose.yaml requires.
var composeEnv = map[string]string{
	"LATCHKEY_ENCRYPTION_KEYS": "k1:QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
	"POSTGRES_PASSWORD":        "0123456789abcdef",
}

// loadCompose loads compose.yaml as docker compose would: validated against
// the Compose JSON schema, variables interpolated from env (and only env:
// not this process's environment, not a .env file), defaults filled in.
func loadCompose(data []byte, env map[string]string) (*types.Project, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  wd,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(wd, "compose.yaml"), Content: data}},
		Environment: maps.Clone(env), // the loader adds to it
	})
}

func TestCompose(t *testing.T) {
	p, err := loadCompose(readFile(t, "compose.yaml"), composeEnv)
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	reportAll(t, checkCompose(p, composeEnv))
}

// TestComposeRequiresVariables checks that compose refuses to start without
// each required variable, rather than starting with an empty encryption key
// or database password.
func TestComposeRequiresVariables(t *testing.T) {
	for name := range composeEnv {
		t.Run(name, func(t *testing.T) {
			env := make(map[string]string)
			for k, v := range composeEnv {
				if k != name {
					env[k] = v
				}
			}
			_, err := loadCompose(readFile(t, "compose.yaml"), env)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("compose.yaml without %s: err = %v, want an error naming it (${%s:?...})", name, err, name)
			}
		})
	}
}

// TestComposeChecksCatch breaks compose.yaml in known ways and wants the
// loader or the checks to name what broke.
func TestComposeChecksCatch(t *testing.T) {
	tests := []struct {
		name, old, new string
		want           string
	}{
		{"misspelt key", "    healthcheck:\n", "    healthchek:\n", "healthchek"},
		{"invalid value", "condition: service_healthy", "condition: healthy", "condition"},
		{"postgres not checked", "    healthcheck:\n      test: [\"CMD-SHELL\", \"pg_isready -U latchkey -d latchkey\"]\n", "    healthcheck:\n      disable: true\n", "healthcheck"},
		{"waits only for start", "condition: service_healthy", "condition: service_started", "service_healthy"},
		{"database elsewhere", "@postgres:5432", "@localhost:5432", "DATABASE_URL"},
		{"key not from the user", "LATCHKEY_ENCRYPTION_KEYS: ${LATCHKEY_ENCRYPTION_KEYS:?set it, see README}", "LATCHKEY_ENCRYPTION_KEYS: k1:QUFBQQ==", "LATCHKEY_ENCRYPTION_KEYS"},
		{"dev mode flag", `command: ["serve"]`, `command: ["serve", "-dev"]`, "dev mode"},
		{"dev mode variable", "LATCHKEY_LOG_FORMAT: json", "LATCHKEY_LOG_FORMAT: json\n      LATCHKEY_DEV: \"1\"", "dev mode"},
		{"bad config value", "LATCHKEY_LOG_FORMAT: json", "LATCHKEY_LOG_FORMAT: yaml", "LATCHKEY_LOG_FORMAT"},
		{"no data volume", "    volumes:\n      - pgdata:/var/lib/postgresql/data\n", "", "/var/lib/postgresql/data"},
		{"wrong postgres", "image: postgres:15", "image: postgres:16", "postgres:15"},
		{"latest postgres", "image: postgres:15", "image: postgres", "latest"},
		{"port not published", "      - \"8080:8080\"", "      - \"8080:9090\"", "8080"},
		{"grace too short", "stop_grace_period: 20s", "stop_grace_period: 10s", "stop_grace_period"},
		{"wrong dockerfile", "dockerfile: deploy/Dockerfile", "dockerfile: Dockerfile", "Dockerfile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mutate(t, "compose.yaml", readFile(t, "compose.yaml"), tt.old, tt.new)
			p, err := loadCompose(b, composeEnv)
			if err != nil {
				wantProblem(t, []error{fmt.Errorf("compose.yaml: %w", err)}, tt.want)
				return
			}
			wantProblem(t, checkCompose(p, composeEnv), tt.want)
		})
	}
}

// checkCompose checks a loaded compose project: postgres with a healthcheck
// and a named volume, latchkey waiting for it to be healthy and configured
// for it, and nothing that would run dev mode.
func checkCompose(p *types.Project, env map[string]string) []error {
	var ps problems
	pg, ok := p.Services["postgres"]
	if !ok {
		ps.add("compose.yaml", "no postgres service")
	} else {
		at := "compose.yaml: services.postgres"
		if err := checkImage(pg.Image); err != nil {
			ps.add(at, "%v", err)
		} else if !strings.HasPrefix(pg.Image, "postgres:15") {
			ps.add(at, "image is %q, want postgres:15", pg.Image)
		}
		if hc := pg.HealthCheck; hc == nil || hc.Disable || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
			ps.add(at, "healthcheck: want a test such as pg_isready; latchkey waits for it")
		}
		data := slices.IndexFunc(pg.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Target == "/var/lib/postgresql/data"
		})
		if data < 0 {
			ps.add(at, "volumes: nothing mounted on /var/lib/postgresql/data, so the data dies with the container")
		} else if v := pg.Volumes[data]; v.Type != types.VolumeTypeVolume || p.Volumes[v.Source].Name == "" {
			ps.add(at, "volumes: /var/lib/postgresql/data must be a named volume declared under volumes:, got %s %q", v.Type, v.Source)
		}
	}

	lk, ok := p.Services["latchkey"]
	if !ok {
		ps.add("compose.yaml", "no latchkey service")
		return ps
	}
	at := "compose.yaml: services.latchkey"
	if dep, ok := lk.DependsOn["postgres"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		ps.add(at, "depends_on.postgres.condition must be %s: serve migrates at start and needs the database to answer", types.ServiceConditionHealthy)
	}
	checkNoDevFlag(&ps, at+": command", append(slices.Clone(lk.Entrypoint), lk.Command...))

	vars := make(map[string]string)
	for k, v := range lk.Environment {
		if v != nil {
			vars[k] = *v
		}
	}
	cfg := checkConfig(&ps, at+": environment", vars)
	if u, err := url.Parse(vars["DATABASE_URL"]); err != nil || u.Scheme != "postgres" || u.Hostname() != "postgres" {
		ps.add(at, "environment.DATABASE_URL must be a postgres:// URL to the postgres service, got %q", vars["DATABASE_URL"])
	}
	if got, want := vars["LATCHKEY_ENCRYPTION_KEYS"], env["LATCHKEY_ENCRYPTION_KEYS"]; got != want {
		ps.add(at, "environment.LATCHKEY_ENCRYPTION_KEYS is %q, want the user's ${LATCHKEY_ENCRYPTION_KEYS}", got)
	}

	if !slices.ContainsFunc(lk.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == appPort }) {
		var got []string
		for _, pc := range lk.Ports {
			got = append(got, fmt.Sprintf("%s:%d", pc.Published, pc.Target))
		}
		ps.add(at, "ports: want one to container port %d, got %q", appPort, got)
	}
	grace := 10 * time.Second // compose's default
	if lk.StopGracePeriod != nil {
		grace = time.Duration(*lk.StopGracePeriod)
	}
	if grace <= cfg.ShutdownTimeout {
		ps.add(at, "stop_grace_period %v must be longer than LATCHKEY_SHUTDOWN_TIMEOUT %v, or compose kills the server mid-shutdown", grace, cfg.ShutdownTimeout)
	}

	if b := lk.Build; b == nil {
		ps.add(at, "no build section")
	} else {
		// compose-go has made the paths absolute; the context must be the
		// repository root (where go.mod is) and the Dockerfile this one.
		if _, err := os.Stat(filepath.Join(b.Context, "go.mod")); err != nil {
			ps.add(at, "build.context %q is not the repository root", b.Context)
		}
		if here, err := filepath.Abs("Dockerfile"); err != nil || filepath.Join(b.Context, b.Dockerfile) != here {
			ps.add(at, "build.dockerfile %q (in %q) is not deploy/Dockerfile", b.Dockerfile, b.Context)
		}
	}
	return ps
}
