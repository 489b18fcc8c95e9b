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
	"math/big"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// selfSigned makes a certificate for key, valid from notBefore for a year.
func selfSigned(t *testing.T, key crypto.Signer, notBefore time.Time) string {
	t.Helper()
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "latchkey-test"},
		NotBefore: notBefore, NotAfter: notBefore.Add(365 * 24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func pkcs8(t *testing.T, key crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
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
		{"RSA, PKCS#8", rsaCert, pkcs8(t, rsaKey), ""},
		{"RSA, PKCS#1", rsaCert, pkcs1, ""},
		{"EC, SEC 1 with parameters", ecCert, sec1, ""},
		{"Ed25519", edCert, pkcs8(t, edKey), ""},
		{"Bag Attributes around the chain", "Bag Attributes\n    friendlyName: x\n" + rsaCert + ecCert, pkcs8(t, rsaKey), ""},
		{"another key", rsaCert, pkcs8(t, ecKey), "does not belong to the certificate"},
		{"switched", pkcs8(t, rsaKey), rsaCert, "the certificate chain holds a private key"},
		{"key in a certificate", rsaCert, rsaCert, "the private key's text holds a certificate"},
		{"not PEM", "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", pkcs8(t, rsaKey), "is not a PEM certificate"},
		{"no key", rsaCert, "", "is not a PEM private key"},
		{"encrypted", rsaCert, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n", "encrypted"},
		{"two keys", rsaCert, pkcs8(t, rsaKey) + pkcs8(t, rsaKey), "more than one"},
		{"expired", selfSigned(t, rsaKey, now.Add(-400*24*time.Hour)), pkcs8(t, rsaKey), "expired on"},
		{"not yet valid", selfSigned(t, rsaKey, now.Add(time.Hour)), pkcs8(t, rsaKey), "not valid before"},
		{"broken certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", pkcs8(t, rsaKey), "cannot be read"},
		{"other block", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n", pkcs8(t, rsaKey), "not a CERTIFICATE"},
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
