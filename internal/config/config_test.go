package config

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestVarsAreWhatFromEnvReads keeps Vars, which the usage text prints, the
// one list of variables: FromEnv reads each of them and no other.
func TestVarsAreWhatFromEnvReads(t *testing.T) {
	var read []string
	if _, err := FromEnv(func(k string) string { read = append(read, k); return "" }); err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, v := range Vars() {
		listed = append(listed, v.Name)
	}
	slices.Sort(read)
	slices.Sort(listed)
	if !slices.Equal(read, listed) {
		t.Errorf("FromEnv reads %v; Vars lists %v", read, listed)
	}
}

func TestDefaults(t *testing.T) {
	c, err := FromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addr: ":8080", SQLitePath: "latchkey.db", LogLevel: slog.LevelInfo, LogFormat: "json",
		ShutdownTimeout: 15 * time.Second, PublicURL: "http://localhost:8080", OutboundTimeout: 30 * time.Second,
	}
	if c.Addr != want.Addr || c.SQLitePath != want.SQLitePath || c.DatabaseURL != "" || c.EncryptionKeys != "" ||
		c.Dev || c.LogLevel != want.LogLevel || c.LogFormat != want.LogFormat || c.ShutdownTimeout != want.ShutdownTimeout ||
		c.PublicURL != want.PublicURL || c.OutboundAllow != nil || c.OutboundTimeout != want.OutboundTimeout ||
		c.OutboundIdle != 64 || c.CacheEntries != 10000 || c.CacheTTL != 5*time.Minute {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
}

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
