package settings

import "github.com/latchkey/latchkey/internal/rotation"

// SealedColumns are where settings keeps sealed values, for a
// rotation.Rotator: the values of secret settings at both levels (rows
// marked encrypted), each bound to its row as write seals it, and the fixed
// values of hidden secret settings (FixedSecretColumn).
func SealedColumns() []rotation.Column {
	return []rotation.Column{
		FixedSecretColumn(),
		{
			Table: "organization_values", Keys: []string{"installation_id", "key"}, Value: "value",
			Where: "encrypted = ?", Args: []any{true},
			AAD: func(k []string) string { return aad(Organization, k[0], "", k[1]) },
		},
		{
			Table: "user_values", Keys: []string{"installation_id", "user_id", "key"}, Value: "value",
			Where: "encrypted = ?", Args: []any{true},
			AAD: func(k []string) string { return aad(User, k[0], k[1], k[2]) },
		},
	}
}
