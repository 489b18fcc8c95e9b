package app

import "github.com/latchkey/latchkey/internal/rotation"

// SealedColumns are where app keeps sealed values, for a rotation.Rotator:
// the signing secrets of webhooks, each bound to its webhook as Create
// seals it.
func SealedColumns() []rotation.Column {
	return []rotation.Column{{
		Table: "webhooks", Keys: []string{"id"}, Value: "secret",
		AAD: func(k []string) string { return sealAAD(k[0]) },
	}}
}
