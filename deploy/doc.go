// Package deploy holds what it takes to run Latchkey in production: the
// container image (Dockerfile), a single-machine setup with PostgreSQL
// (compose.yaml) and Kubernetes manifests (kubernetes/). README.md says how
// to use each.
//
// The package has no code. Its tests check these files with the parsers
// that Docker, Compose and Kubernetes use themselves (BuildKit's Dockerfile
// parser, compose-go, the Kubernetes API types in strict mode) plus the
// rules that matter for Latchkey: never dev mode, a non-root user, probes
// on the right paths and port, references that name objects and keys that
// exist. They need neither a container engine nor a cluster nor a network,
// so `go test ./...` in this folder (its own module, kept apart so the
// server's tests do not compile these validators) runs anywhere.
package deploy
