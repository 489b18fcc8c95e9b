package config

import (
	"log/slog"
	"slices"
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
		c.PublicURL != want.PublicURL || c.OutboundAllow != nil || c.OutboundTimeout != want.OutboundTimeout {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
}
