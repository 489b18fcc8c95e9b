package config

import (
	"strings"
	"testing"
)

func TestSealingKey(t *testing.T) {
	tests := []struct {
		name        string
		keys, seal  string
		want        string
		errContains string
	}{
		{name: "default: the first key", keys: "k1:AAAA,k2:BBBB", want: "k1"},
		{name: "named", keys: "k1:AAAA, k2:BBBB", seal: "k2", want: "k2"},
		{name: "no keys, none named (dev mode)", want: ""},
		{name: "not in the ring", keys: "k1:AAAA,k2:BBBB", seal: "k3", errContains: `"k3" is not a key id of LATCHKEY_ENCRYPTION_KEYS (k1, k2)`},
		{name: "no ring", seal: "k1", errContains: "LATCHKEY_ENCRYPTION_KEYS is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"LATCHKEY_ENCRYPTION_KEYS": tt.keys, "LATCHKEY_SEALING_KEY": tt.seal}
			c, err := FromEnv(func(k string) string { return env[k] })
			if tt.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errContains) {
					t.Fatalf("err = %v, want one containing %q", err, tt.errContains)
				}
				if strings.Contains(err.Error(), "AAAA") {
					t.Errorf("the error shows key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.SealingKey != tt.want {
				t.Errorf("SealingKey = %q, want %q", c.SealingKey, tt.want)
			}
		})
	}
}
