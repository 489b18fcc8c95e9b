package callback

import "github.com/latchkey/latchkey/internal/rotation"

// verifierAAD binds a sealed PKCE verifier to its state's row.
func verifierAAD(stateHash string) string { return "state:" + stateHash }

// SealedColumns are where callback keeps sealed values, for a
// rotation.Rotator: the PKCE verifiers of states (empty when the config
// does not use PKCE).
func SealedColumns() []rotation.Column {
	return []rotation.Column{{
		Table: "oauth_states", Keys: []string{"state_hash"}, Value: "code_verifier",
		Where: "code_verifier <> ''",
		AAD:   func(k []string) string { return verifierAAD(k[0]) },
	}}
}
