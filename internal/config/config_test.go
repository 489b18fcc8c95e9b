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
		c.OutboundIdle != 64 || c.CacheEntries != 10000 || c.CacheTTL != 5*time.Minute ||
		c.HookRate != 50 || c.HookBurst != 500 {
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

func TestHookLimit(t *testing.T) {
	tests := []struct {
		rate, burst string
		wantRate    float64
		wantBurst   int
		errContains string
	}{
		{rate: "20", burst: "200", wantRate: 20, wantBurst: 200},
		{rate: "0.5", wantRate: 0.5, wantBurst: 500},
		{rate: "0", wantRate: 0, wantBurst: 500}, // no limit
		{rate: "-1", errContains: "LATCHKEY_HOOK_RATE"},
		{rate: "NaN", errContains: "LATCHKEY_HOOK_RATE"},
		{rate: "Inf", errContains: "LATCHKEY_HOOK_RATE"},
		{rate: "fast", errContains: "LATCHKEY_HOOK_RATE"},
		{burst: "0", errContains: "LATCHKEY_HOOK_BURST"},
		{burst: "1.5", errContains: "LATCHKEY_HOOK_BURST"},
	}
	for _, tt := range tests {
		env := map[string]string{"LATCHKEY_HOOK_RATE": tt.rate, "LATCHKEY_HOOK_BURST": tt.burst}
		c, err := FromEnv(func(k string) string { return env[k] })
		if tt.errContains != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errContains) {
				t.Errorf("rate %q burst %q: err = %v, want one naming %s", tt.rate, tt.burst, err, tt.errContains)
			}
			continue
		}
		if err != nil || c.HookRate != tt.wantRate || c.HookBurst != tt.wantBurst {
			t.Errorf("rate %q burst %q: %v, %d, %v; want %v, %d", tt.rate, tt.burst, c.HookRate, c.HookBurst, err, tt.wantRate, tt.wantBurst)
		}
	}
}

func TestRenewalShare(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want float64 // 0: refused, naming the variable
	}{
		{"", 0.5}, {"1", 1}, {"0.25", 0.25},
		{"0", 0}, {"-0.5", 0}, {"1.5", 0}, {"NaN", 0}, {"half", 0},
	} {
		env := map[string]string{"LATCHKEY_RENEWAL_SHARE": tt.v}
		c, err := FromEnv(func(k string) string { return env[k] })
		if tt.want == 0 {
			if err == nil || !strings.Contains(err.Error(), "LATCHKEY_RENEWAL_SHARE") {
				t.Errorf("%q: err = %v, want one naming LATCHKEY_RENEWAL_SHARE", tt.v, err)
			}
			continue
		}
		if err != nil || c.RenewalShare != tt.want {
			t.Errorf("%q: %v, %v; want %v", tt.v, c.RenewalShare, err, tt.want)
		}
	}
}
