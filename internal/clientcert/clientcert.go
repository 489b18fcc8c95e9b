// Package clientcert reads client certificates for mutual TLS (RFC 8705)
// from the PEM text that settings hold: a certificate chain in one, its
// private key in another. Its errors say what is wrong without quoting the
// text: a private key is a secret, and so is whatever an installer pasted
// into the wrong field.
package clientcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// maxChain bounds the certificates of one chain: a leaf and its
// intermediates, never more than a handful.
const maxChain = 10

// ParseChain reads a PEM certificate chain, leaf first: one or more
// CERTIFICATE blocks and nothing else but text between them (the "Bag
// Attributes" lines openssl writes). It checks that the leaf is valid at
// now, since a certificate outside its validity fails every handshake.
func ParseChain(text string, now time.Time) ([]*x509.Certificate, error) {
	rest := []byte(text)
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type != "CERTIFICATE" && strings.Contains(block.Type, "PRIVATE KEY"):
			return nil, errors.New("holds a private key, which belongs in the key's own setting; this one takes the certificate chain")
		case block.Type != "CERTIFICATE":
			return nil, errors.New("has a PEM block that is not a CERTIFICATE; only certificates belong in a certificate chain")
		case len(certs) == maxChain:
			return nil, fmt.Errorf("has more than %d certificates", maxChain)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("has a certificate (number %d) that cannot be read", len(certs)+1)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("is not a PEM certificate (-----BEGIN CERTIFICATE-----)")
	}
	if err := Valid(certs[0], now); err != nil {
		return nil, err
	}
	return certs, nil
}

// Valid returns why leaf cannot be used at now (it expired, or is not
// valid yet), or nil.
func Valid(leaf *x509.Certificate, now time.Time) error {
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("holds a certificate that expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("holds a certificate that is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// ParseKey reads a PEM private key, RSA, EC or Ed25519, in PKCS#8, PKCS#1
// or SEC 1; an "EC PARAMETERS" block before it (openssl ecparam writes
// one) is skipped. Encrypted keys are refused: nobody is there to type the
// passphrase.
func ParseKey(text string) (crypto.Signer, error) {
	rest := []byte(text)
	var key crypto.Signer
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "EC PARAMETERS":
			continue
		case block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "":
			return nil, errors.New("holds an encrypted private key; store it without a passphrase (openssl pkey -in key.pem -out plain.pem)")
		case block.Type == "CERTIFICATE":
			return nil, errors.New("holds a certificate, which belongs in the certificate's own setting; this one takes the private key")
		case !strings.HasSuffix(block.Type, "PRIVATE KEY"):
			return nil, errors.New("has a PEM block that is not a private key; only the private key belongs here")
		case key != nil:
			return nil, errors.New("holds more than one private key")
		}
		k, err := parseKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		key = k
	}
	if key == nil {
		return nil, errors.New("is not a PEM private key (-----BEGIN PRIVATE KEY-----)")
	}
	return key, nil
}

func parseKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch k := k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		}
		return nil, errors.New("holds a private key that is neither RSA, EC nor Ed25519")
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("holds a private key that cannot be read (RSA, EC or Ed25519 in PKCS#8, PKCS#1 or SEC 1)")
}

// Pair reads a chain and its key (see ParseChain and ParseKey) into a
// certificate for crypto/tls, checking that the key is the leaf's. Errors
// begin with what is wrong ("the certificate ...", "the private key ...")
// and never quote either text.
func Pair(chainPEM, keyPEM string, now time.Time) (tls.Certificate, error) {
	certs, err := ParseChain(chainPEM, now)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("the certificate chain %w", err)
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("the private key's text %w", err)
	}
	pub, ok := certs[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return tls.Certificate{}, errors.New("the private key does not belong to the certificate (its public key is another)")
	}
	out := tls.Certificate{PrivateKey: key, Leaf: certs[0]}
	for _, c := range certs {
		out.Certificate = append(out.Certificate, c.Raw)
	}
	return out, nil
}

// Thumbprint is the certificate's SHA-256 hash in hex, as a provider that
// binds tokens to it computes it (RFC 8705 §3.1, x5t#S256, there in
// base64url) and as consoles show it.
func Thumbprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}
