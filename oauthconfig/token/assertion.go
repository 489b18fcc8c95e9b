package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"time"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/template"
	"github.com/latchkey/latchkey/oauthconfig"
)

// assertionLifetime bounds a signed assertion's validity: long enough for
// the request, short enough that a captured one soon expires (RFC 7523
// §3 asks for an exp; providers cap it, Google at an hour).
const assertionLifetime = 5 * time.Minute

// assertion builds the JWT a config signs (RFC 7523): for client
// authentication (private_key_jwt, client_secret_jwt; §2.2) or as the
// grant itself (jwt_bearer; §2.1). The claims are iss and sub (the
// client_id), aud (the token URL), jti, iat and exp, then the config's
// assertion_claims, rendered over the settings, which may replace them.
// The key is the PEM private key in the config's assertion_key_setting,
// or the client_secret for client_secret_jwt (HS256).
func assertion(cfg *oauthconfig.Config, vars Vars, aud string, now time.Time) (string, error) {
	claims := map[string]any{
		"iss": vars.Values["client_id"], "sub": vars.Values["client_id"], "aud": aud,
		"jti": newJTI(), "iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix(),
	}
	for name, src := range cfg.AssertionClaims {
		v, err := RenderField("config field assertion_claims."+name, "assertion_claims."+name, src, template.Text, vars, false)
		if err != nil {
			return "", err
		}
		if name == "iat" || name == "exp" || name == "nbf" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return "", errs.New(errs.Invalid, "assertion_claims.%s does not render to seconds since 1970", name)
			}
			claims[name] = n
			continue
		}
		claims[name] = v
	}
	alg := cfg.AssertionAlg
	var key any
	if cfg.ClientAuth == oauthconfig.AuthClientSecretJWT && cfg.GrantType != oauthconfig.JWTBearer {
		secret := vars.Values["client_secret"]
		if secret == "" {
			return "", errs.New(errs.Invalid, "client_secret_jwt needs client_secret, and this installation has no value for it")
		}
		key, alg = []byte(secret), "HS256"
	} else {
		pemText := vars.Values[cfg.AssertionKeySetting]
		if pemText == "" {
			return "", errs.New(errs.Invalid, "setting %q holds no private key to sign the assertion with", cfg.AssertionKeySetting)
		}
		k, err := parsePrivateKey(pemText)
		if err != nil {
			return "", errs.New(errs.Invalid, "setting %q: %v", cfg.AssertionKeySetting, err)
		}
		key = k
		if alg == "" {
			alg = "RS256"
			if _, ok := k.(*ecdsa.PrivateKey); ok {
				alg = "ES256"
			}
		}
	}
	return signJWT(alg, key, claims)
}

func newJTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// parsePrivateKey reads an RSA or EC private key in PEM (PKCS#8, PKCS#1
// or SEC 1). Its errors never quote the key.
func parsePrivateKey(text string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("not a PEM private key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			switch s.(type) {
			case *rsa.PrivateKey, *ecdsa.PrivateKey:
				return s, nil
			}
		}
		return nil, errors.New("the key is neither RSA nor EC")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("the PEM block is not an RSA or EC private key")
}

// signJWT signs claims as a compact JWS (RFC 7515) with alg: RS256,
// PS256, ES256 or HS256.
func signJWT(alg string, key any, claims map[string]any) (string, error) {
	header, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case []byte:
		if alg != "HS256" {
			return "", fmt.Errorf("a shared secret signs with HS256, not %s", alg)
		}
		m := hmac.New(sha256.New, k)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	case *rsa.PrivateKey:
		switch alg {
		case "RS256":
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
		case "PS256":
			sig, err = rsa.SignPSS(rand.Reader, k, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		default:
			return "", errs.New(errs.Invalid, "an RSA key signs with RS256 or PS256, not %s", alg)
		}
	case *ecdsa.PrivateKey:
		if alg != "ES256" || k.Curve.Params().BitSize != 256 {
			return "", errs.New(errs.Invalid, "an EC key signs with ES256 on P-256")
		}
		var r, s *big.Int
		if r, s, err = ecdsa.Sign(rand.Reader, k, digest[:]); err == nil {
			sig = make([]byte, 64) // RFC 7518 §3.4: R and S, 32 bytes each
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	default:
		return "", fmt.Errorf("unsupported key")
	}
	if err != nil {
		return "", err
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// usesAssertion reports whether a body template places a signed assertion
// (<<assertion>> or <<client_assertion>>), which is then made for it.
func usesAssertion(src string, ctx template.Context) bool {
	t, err := template.Cached(src, ctx)
	if err != nil {
		return false // the render reports it
	}
	return slices.Contains(t.Vars(), "assertion") || slices.Contains(t.Vars(), "client_assertion")
}
