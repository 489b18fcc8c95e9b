package deploy

import (
	"bytes"
	"fmt"
	"go/version"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func TestDockerfile(t *testing.T) {
	reportAll(t, checkDockerfile(readFile(t, "Dockerfile"), goVersion(t)))
}

// TestDockerfileChecksCatch breaks the Dockerfile in known ways and wants
// the parser, BuildKit's linter or the checks to name what broke.
func TestDockerfileChecksCatch(t *testing.T) {
	tests := []struct {
		name, old, new string
		want           string
	}{
		{"unknown instruction", "WORKDIR /src", "WORKDIRR /src", "WORKDIRR"},
		{"lint: casing", "AS build", "as build", "FromAsCasing"},
		{"shell-form CMD", `CMD ["serve"]`, "CMD serve", "CMD in shell form"},
		{"one stage", "FROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/latchkey /latchkey\n", "", "stages"},
		{"untagged base", "FROM golang:1.26.8-bookworm AS build", "FROM golang AS build", "no tag"},
		{"latest base", "static-debian12:nonroot", "static-debian12:latest", "latest"},
		{"older Go than go.mod", "golang:1.26.8-bookworm", "golang:1.25.3-bookworm", "go.mod"},
		{"final stage is the builder", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM golang:1.26.8-bookworm", "final stage"},
		{"cgo on", "CGO_ENABLED=0 go build", "go build", "CGO_ENABLED=0"},
		{"no trimpath", "-trimpath ", "", "-trimpath"},
		{"another package", "./cmd/latchkey", "./cmd/other", "./cmd/latchkey"},
		{"sources before modules", "COPY go.mod go.sum ./\nRUN go mod download\n\nCOPY . .\n", "COPY . .\nCOPY go.mod go.sum ./\nRUN go mod download\n", "go mod download"},
		{"no module layer", "RUN go mod download\n", "", "go mod download"},
		{"ADD of a URL", "WORKDIR /src\n", "WORKDIR /src\nADD https://example.com/tool.tar.gz /tmp/\n", "ADD"},
		{"root user", "USER 65532:65532", "USER root", "USER"},
		{"uid 0", "USER 65532:65532", "USER 0:0", "USER"},
		{"no user", "USER 65532:65532\n", "", "USER"},
		{"no expose", "EXPOSE 8080\n", "", "EXPOSE"},
		{"entrypoint elsewhere", `ENTRYPOINT ["/latchkey"]`, `ENTRYPOINT ["/bin/latchkey"]`, "ENTRYPOINT"},
		{"dev mode", `CMD ["serve"]`, `CMD ["serve", "-dev"]`, "dev mode"},
		{"no serve", `CMD ["serve"]`, `CMD ["migrate"]`, "CMD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mutate(t, "Dockerfile", readFile(t, "Dockerfile"), tt.old, tt.new)
			wantProblem(t, checkDockerfile(b, goVersion(t)), tt.want)
		})
	}
}

// checkDockerfile parses data as BuildKit would, with its linter on, and
// checks the image it describes. goVersion is go.mod's go line.
func checkDockerfile(data []byte, goVersion string) []error {
	var p problems
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		p.add("Dockerfile", "%v", err)
		return p
	}
	for _, w := range res.Warnings {
		p.add(lineOf(w.Location), "%s", w.Short)
	}
	lint := linter.New(&linter.Config{
		Warn: func(rule, _, _, msg string, loc []parser.Range) {
			p.add(lineOf(firstRange(loc)), "lint %s: %s", rule, msg)
		},
	})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		p.add("Dockerfile", "%v", err)
		return p
	}
	if len(stages) < 2 {
		p.add("Dockerfile", "%d stages: want a build stage and a small final stage", len(stages))
		return p
	}

	for i, s := range stages {
		at := stageAt(s)
		// A base that is an earlier stage is not pulled.
		if !slices.ContainsFunc(stages[:i], func(e instructions.Stage) bool { return e.Name != "" && e.Name == s.BaseName }) {
			if err := checkImage(s.BaseName); err != nil {
				p.add(at, "%v", err)
			}
		}
		for _, c := range s.Commands {
			if add, ok := c.(*instructions.AddCommand); ok {
				for _, src := range add.SourcePaths {
					if strings.Contains(src, "://") || strings.HasPrefix(src, "git@") {
						p.add(cmdAt(c), "ADD %s downloads at build time, unchecked: fetch it in a RUN with a checksum, or COPY it", src)
					}
				}
			}
		}
	}

	// The build stage is the one that runs go build.
	bi := slices.IndexFunc(stages, func(s instructions.Stage) bool { return buildRun(s) != nil })
	if bi < 0 {
		p.add("Dockerfile", "no stage runs go build")
		return p
	}
	build := stages[bi]
	out := checkBuildStage(&p, build, goVersion)

	final := stages[len(stages)-1]
	if bi == len(stages)-1 || repository(final.BaseName) == repository(build.BaseName) {
		p.add(stageAt(final), "the final stage must not be the build stage or its image: ship only the binary")
	}
	checkFinalStage(&p, final, build, bi, out)
	return p
}

// checkBuildStage checks the stage that compiles Latchkey and returns the
// path of the binary it writes.
func checkBuildStage(p *problems, s instructions.Stage, goVersion string) string {
	at := stageAt(s)
	// The golang images set GOTOOLCHAIN=local: a Go older than go.mod's go
	// line fails the build instead of fetching a newer toolchain.
	if named, err := reference.ParseNormalizedNamed(s.BaseName); err == nil && reference.Path(named) == "library/golang" {
		tag := ""
		if t, ok := named.(reference.Tagged); ok {
			tag, _, _ = strings.Cut(t.Tag(), "-")
		}
		if !version.IsValid("go"+tag) || version.Compare("go"+tag, "go"+goVersion) < 0 {
			p.add(at, "%s: want Go %s or later (go.mod's go line), with the patch release in the tag", s.BaseName, goVersion)
		}
	} else {
		p.add(at, "build stage %s: want a golang image", s.BaseName)
	}

	// Layer order: go.mod and go.sum, go mod download, then the sources, so
	// that editing a source file leaves the module layer cached.
	var modCopy, download, srcCopy, compile = -1, -1, -1, -1
	for i, c := range s.Commands {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			if c.From == "" && slices.Contains(c.SourcePaths, "go.mod") && modCopy < 0 {
				modCopy = i
			}
			if c.From == "" && slices.Contains(c.SourcePaths, ".") && srcCopy < 0 {
				srcCopy = i
			}
		case *instructions.RunCommand:
			line := strings.Join(c.CmdLine, " ")
			if strings.Contains(line, "go mod download") && download < 0 {
				download = i
			}
			if strings.Contains(line, "go build") {
				compile = i
			}
		}
	}
	if !(modCopy >= 0 && modCopy < download && download < srcCopy && srcCopy < compile) {
		p.add(at, "want COPY go.mod go.sum, then RUN go mod download, then COPY . ., then go build, so the module layer is cached")
	}

	run := buildRun(s)
	line := strings.Join(run.CmdLine, " ")
	cgoOff := strings.Contains(line, "CGO_ENABLED=0")
	for _, c := range s.Commands {
		if env, ok := c.(*instructions.EnvCommand); ok {
			for _, kv := range env.Env {
				if kv.Key == "CGO_ENABLED" {
					cgoOff = kv.Value == "0"
				}
			}
		}
	}
	if !cgoOff {
		p.add(cmdAt(run), "go build without CGO_ENABLED=0: the final image has no libc for a cgo binary")
	}
	for _, want := range []string{"-trimpath", "./cmd/latchkey"} {
		if !slices.Contains(strings.Fields(line), want) {
			p.add(cmdAt(run), "go build: want %s in %q", want, line)
		}
	}
	f := strings.Fields(line)
	if i := slices.Index(f, "-o"); i >= 0 && i+1 < len(f) {
		return f[i+1]
	}
	p.add(cmdAt(run), "go build: want -o PATH, so the final stage knows what to copy")
	return ""
}

// checkFinalStage checks the image that ships: the binary copied from the
// build stage, run by its exec-form ENTRYPOINT as a numeric non-root user.
func checkFinalStage(p *problems, s, build instructions.Stage, buildIndex int, binary string) {
	at := stageAt(s)
	var dest, user string
	var entrypoint, cmd []string
	var exposed bool
	for _, c := range s.Commands {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			if (c.From == build.Name || c.From == strconv.Itoa(buildIndex)) && slices.Contains(c.SourcePaths, binary) {
				dest = c.DestPath
				if strings.HasSuffix(dest, "/") {
					dest = path.Join(dest, path.Base(binary))
				}
			}
		case *instructions.UserCommand:
			user = c.User
		case *instructions.ExposeCommand:
			for _, port := range c.Ports {
				if strings.TrimSuffix(port, "/tcp") == strconv.Itoa(appPort) {
					exposed = true
				}
			}
		case *instructions.EntrypointCommand:
			entrypoint = c.CmdLine
			if c.PrependShell {
				p.add(cmdAt(c), "ENTRYPOINT in shell form: the image has no shell, and under one the server would miss SIGTERM")
			}
		case *instructions.CmdCommand:
			cmd = c.CmdLine
			if c.PrependShell {
				p.add(cmdAt(c), "CMD in shell form: the image has no shell")
			}
		}
	}
	if dest == "" {
		p.add(at, "no COPY --from=%s of %s", build.Name, binary)
	}
	if len(entrypoint) != 1 || entrypoint[0] != dest {
		p.add(at, "ENTRYPOINT is %q, want [%q], the copied binary", entrypoint, dest)
	}
	if !slices.Equal(cmd, []string{"serve"}) {
		p.add(at, "CMD is %q, want [\"serve\"]", cmd)
	}
	checkNoDevFlag(p, at+": ENTRYPOINT and CMD", append(slices.Clone(entrypoint), cmd...))
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		p.add(at, "USER is %q: want a numeric non-root user such as 65532:65532, so Kubernetes' runAsNonRoot can verify it", user)
	}
	if !exposed {
		p.add(at, "no EXPOSE %d", appPort)
	}
}

// buildRun returns the RUN of s that runs go build, or nil.
func buildRun(s instructions.Stage) *instructions.RunCommand {
	for _, c := range s.Commands {
		if r, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(r.CmdLine, " "), "go build") {
			return r
		}
	}
	return nil
}

// repository is an image reference without its tag or digest.
func repository(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return named.Name()
}

func stageAt(s instructions.Stage) string {
	if s.Name == "" {
		return fmt.Sprintf("%s (unnamed stage)", lineOf(firstRange(s.Location)))
	}
	return fmt.Sprintf("%s (stage %q)", lineOf(firstRange(s.Location)), s.Name)
}

func cmdAt(c instructions.Command) string {
	return fmt.Sprintf("%s (%s)", lineOf(firstRange(c.Location())), c.Name())
}

func firstRange(rs []parser.Range) *parser.Range {
	if len(rs) == 0 {
		return nil
	}
	return &rs[0]
}

func lineOf(r *parser.Range) string {
	if r == nil {
		return "Dockerfile"
	}
	return fmt.Sprintf("Dockerfile:%d", r.Start.Line)
}
