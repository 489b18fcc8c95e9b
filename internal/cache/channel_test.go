package cache

import (
	"strings"
	"testing"
)

// TestChannelFor: each schema has a channel of its own, a valid
// identifier within PostgreSQL's 63 bytes; public keeps the plain one.
func TestChannelFor(t *testing.T) {
	for schema, want := range map[string]string{
		"": "latchkey_cache", "public": "latchkey_cache", "test_0a1b": "latchkey_cache_test_0a1b",
		"Tenant-A": "latchkey_cache_tenant_a", strings.Repeat("s", 80): "latchkey_cache_" + strings.Repeat("s", 48),
	} {
		if got := channelFor(schema); got != want {
			t.Errorf("channelFor(%q) = %q, want %q", schema, got, want)
		}
	}
}
