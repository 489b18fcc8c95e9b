package token

import (
	"crypto/x509/pkix"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/outbound"
	"github.com/latchkey/latchkey/internal/testpki"
)

// selfSigned returns a PEM certificate valid from notBefore for a day,
// and its PEM key.
func selfSigned(t *testing.T, notBefore time.Time) (chain, key string) {
	t.Helper()
	c := testpki.SelfSigned(t, testpki.NewKey(t), pkix.Name{CommonName: "acme"}, notBefore, notBefore.Add(24*time.Hour))
	return c.Chain, c.Key
}

// TestWithCertificate: a config's client certificate that cannot be used
// is the installation's configuration error (a missing value is an
// invalid request, like any setting without one), said without the texts.
func TestWithCertificate(t *testing.T) {
	cfg := testConfig()
	base := outbound.New(outbound.Options{})
	if c, err := WithCertificate(base, cfg, nil); c != base || err != nil {
		t.Fatalf("a config without a certificate: %v, %v", c, err)
	}
	cfg.Name, cfg.ClientCertSetting, cfg.ClientKeySetting = "adp", "client_cert", "client_key"
	chain, key := selfSigned(t, time.Now().Add(-time.Hour))
	oldChain, oldKey := selfSigned(t, time.Now().Add(-48*time.Hour))
	_, otherKey := selfSigned(t, time.Now().Add(-time.Hour))
	if c, err := WithCertificate(base, cfg, map[string]string{"client_cert": chain, "client_key": key}); err != nil || c == base {
		t.Fatalf("a good certificate: %v, %v", c, err)
	}
	for _, tt := range []struct {
		name       string
		chain, key string
		code       errs.Code
		want       string
	}{
		{"no key", chain, "", errs.Invalid, `setting "client_key" has no value`},
		{"expired", oldChain, oldKey, errs.ConfigurationError, "expired on"},
		{"another key", chain, otherKey, errs.ConfigurationError, "does not belong"},
		{"switched", key, chain, errs.ConfigurationError, "holds a private key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := WithCertificate(base, cfg, map[string]string{"client_cert": tt.chain, "client_key": tt.key})
			if !errs.Is(err, tt.code) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %s saying %q", err, tt.code, tt.want)
			}
			for _, text := range []string{tt.chain, tt.key} {
				if body := strings.Split(text+"\n\n", "\n")[1]; body != "" && strings.Contains(err.Error(), body) {
					t.Errorf("the error quotes a PEM text: %v", err)
				}
			}
		})
	}
}
