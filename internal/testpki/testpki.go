// Package testpki makes certificates for tests when they run: a CA that
// issues client certificates (RFC 8705), and self-signed ones, as PEM
// texts the way an installer pastes them. Nothing here is for production.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// CA is a certificate authority made for one test.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	Pool *x509.CertPool // holds Cert: a TLS server's ClientCAs
}

// NewCA returns a CA valid from an hour ago for a day.
func NewCA(tb testing.TB) *CA {
	tb.Helper()
	key := NewKey(tb)
	tpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "Test Issuing CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, Key: key, Pool: pool}
}

// Certificate is a certificate and its key as PEM, with the thumbprint a
// provider knows a client by (hex SHA-256 of the DER).
type Certificate struct {
	Chain, Key string
	Thumbprint string
}

// Issue returns a client certificate for subject, signed by ca, valid
// from an hour ago for a day.
func (ca *CA) Issue(tb testing.TB, subject pkix.Name) Certificate {
	tb.Helper()
	return ca.IssueValid(tb, subject, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// IssueValid is Issue for a certificate valid from notBefore to notAfter.
func (ca *CA) IssueValid(tb testing.TB, subject pkix.Name, notBefore, notAfter time.Time) Certificate {
	tb.Helper()
	tpl := &x509.Certificate{
		SerialNumber: serial(), Subject: subject, NotBefore: notBefore, NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return create(tb, tpl, ca.Cert, NewKey(tb), ca.Key)
}

// SelfSigned returns a client certificate for key and subject, valid
// from notBefore to notAfter.
func SelfSigned(tb testing.TB, key crypto.Signer, subject pkix.Name, notBefore, notAfter time.Time) Certificate {
	tb.Helper()
	tpl := &x509.Certificate{
		SerialNumber: serial(), Subject: subject, NotBefore: notBefore, NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return create(tb, tpl, tpl, key, key)
}

// NewKey returns a new P-256 key.
func NewKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// PEMKey returns key as a PKCS #8 PEM text.
func PEMKey(tb testing.TB, key crypto.Signer) string {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func create(tb testing.TB, tpl, parent *x509.Certificate, key, signer crypto.Signer) Certificate {
	tb.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, key.Public(), signer)
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return Certificate{
		Chain:      string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Key:        PEMKey(tb, key),
		Thumbprint: hex.EncodeToString(sum[:]),
	}
}

// serial is a random 128-bit serial number, so that no two certificates
// of a test share one.
func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	return n
}
