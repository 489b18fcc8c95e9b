package clientcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testpki"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// selfSigned makes a certificate for key, valid from notBefore for a year.
func selfSigned(t *testing.T, key crypto.Signer, notBefore time.Time) string {
	t.Helper()
	return testpki.SelfSigned(t, key, pkix.Name{CommonName: "latchkey-test"}, notBefore, notBefore.Add(365*24*time.Hour)).Chain
}

func TestPair(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	sec1 := "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" +
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}))
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))
	start := now.Add(-time.Hour)
	rsaCert, ecCert, edCert := selfSigned(t, rsaKey, start), selfSigned(t, ecKey, start), selfSigned(t, edKey, start)

	for _, tt := range []struct {
		name, chain, key string
		want             string // "" for success, else a part of the error
	}{
		{"RSA, PKCS#8", rsaCert, testpki.PEMKey(t, rsaKey), ""},
		{"RSA, PKCS#1", rsaCert, pkcs1, ""},
		{"EC, SEC 1 with parameters", ecCert, sec1, ""},
		{"Ed25519", edCert, testpki.PEMKey(t, edKey), ""},
		{"Bag Attributes around the chain", "Bag Attributes\n    friendlyName: x\n" + rsaCert + ecCert, testpki.PEMKey(t, rsaKey), ""},
		{"another key", rsaCert, testpki.PEMKey(t, ecKey), "does not belong to the certificate"},
		{"switched", testpki.PEMKey(t, rsaKey), rsaCert, "the certificate chain holds a private key"},
		{"key in a certificate", rsaCert, rsaCert, "the private key's text holds a certificate"},
		{"not PEM", "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", testpki.PEMKey(t, rsaKey), "is not a PEM certificate"},
		{"no key", rsaCert, "", "is not a PEM private key"},
		{"encrypted", rsaCert, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n", "encrypted"},
		{"two keys", rsaCert, testpki.PEMKey(t, rsaKey) + testpki.PEMKey(t, rsaKey), "more than one"},
		{"expired", selfSigned(t, rsaKey, now.Add(-400*24*time.Hour)), testpki.PEMKey(t, rsaKey), "expired on"},
		{"not yet valid", selfSigned(t, rsaKey, now.Add(time.Hour)), testpki.PEMKey(t, rsaKey), "not valid before"},
		{"broken certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", testpki.PEMKey(t, rsaKey), "cannot be read"},
		{"other block", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n", testpki.PEMKey(t, rsaKey), "not a CERTIFICATE"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Pair(tt.chain, tt.key, now)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Leaf == nil || len(c.Certificate) == 0 || c.PrivateKey == nil {
					t.Fatalf("incomplete certificate: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
			// The texts' base64 never comes back in a message.
			for _, text := range []string{tt.chain, tt.key} {
				for _, line := range strings.Split(text, "\n") {
					if len(line) > 8 && !strings.HasPrefix(line, "-----") && strings.Contains(err.Error(), line) {
						t.Errorf("the error quotes the input: %v", err)
					}
				}
			}
		})
	}
}

func TestThumbprint(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certs, err := ParseChain(selfSigned(t, key, now.Add(-time.Hour)), now)
	if err != nil {
		t.Fatal(err)
	}
	if got := Thumbprint(certs[0]); len(got) != 64 {
		t.Errorf("thumbprint %q, want 64 hex digits", got)
	}
}
