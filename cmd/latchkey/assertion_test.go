package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/oauthtest"
	"github.com/latchkey/latchkey/internal/testpki"
)

// verifyJWT checks a compact JWS with key (an RSA or EC public key, or an
// HMAC secret) and returns its header and claims.
func verifyJWT(t *testing.T, jwt string, key any) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", jwt)
	}
	enc := base64.RawURLEncoding
	var header, claims map[string]any
	h, _ := enc.DecodeString(parts[0])
	c, _ := enc.DecodeString(parts[1])
	sig, _ := enc.DecodeString(parts[2])
	json.Unmarshal(h, &header)
	json.Unmarshal(c, &claims)
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	ok := false
	switch k := key.(type) {
	case *rsa.PublicKey:
		if header["alg"] == "PS256" {
			ok = rsa.VerifyPSS(k, crypto.SHA256, digest[:], sig, nil) == nil
		} else {
			ok = rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil
		}
	case *ecdsa.PublicKey:
		ok = len(sig) == 64 && ecdsa.Verify(k, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	case []byte:
		m := hmac.New(sha256.New, k)
		m.Write([]byte(parts[0] + "." + parts[1]))
		ok = hmac.Equal(m.Sum(nil), sig)
	}
	if !ok {
		t.Fatalf("the signature (%v) does not verify", header["alg"])
	}
	return header, claims
}

// TestJWTAssertions: the jwt_bearer grant (Google service accounts) and
// private_key_jwt and client_secret_jwt client authentication send an
// assertion that verifies with the right key and carries the claims.
func TestJWTAssertions(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tt := range []struct {
		name   string
		cfg    map[string]any
		key    any // what verifies
		alg    string
		field  string // where the assertion is
		claims map[string]string
	}{
		{"jwt_bearer, RS256", map[string]any{"grant_type": "jwt_bearer", "assertion_key_setting": "signing_key",
			"assertion_claims": map[string]string{"iss": "svc@project.iam.example", "scope": "<<scope>>"}, "scopes": []string{"drive.readonly"}},
			&rsaKey.PublicKey, "RS256", "assertion", map[string]string{"iss": "svc@project.iam.example", "scope": "drive.readonly", "sub": "latchkey-client"}},
		{"private_key_jwt, ES256", map[string]any{"grant_type": "client_credentials", "client_auth": "private_key_jwt", "assertion_key_setting": "ec_key"},
			&ecKey.PublicKey, "ES256", "client_assertion", map[string]string{"iss": "latchkey-client", "sub": "latchkey-client"}},
		{"client_secret_jwt, HS256", map[string]any{"grant_type": "client_credentials", "client_auth": "client_secret_jwt"},
			[]byte(testClientSecret), "HS256", "client_assertion", map[string]string{"iss": "latchkey-client"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			fault := oauthtest.NewFaultProvider(t)
			f := newFlowApp(t, e, map[string]any{"link_url": fault.URL() + "/authorize", "token_url": fault.URL() + "/token"})
			e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "signing_key", "secret": true})
			e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "ec_key", "secret": true})
			e.must(201, "POST", "/v1/apps/acme/settings", e.key, map[string]any{"key": "service_token", "secret": true})
			e.must(200, "PATCH", "/v1/installations/"+f.instID+"/settings", e.key, map[string]any{"values": map[string]any{
				"signing_key": testpki.PEMKey(t, rsaKey), "ec_key": testpki.PEMKey(t, ecKey)}})
			body := map[string]any{"name": "svc", "token_url": fault.URL() + "/token", "access_token_setting": "service_token"}
			for k, v := range tt.cfg {
				body[k] = v
			}
			cfg := e.must(201, "POST", "/v1/apps/acme/oauth-configs", e.key, body)
			fault.Then(oauthtest.TokenJSON(map[string]any{"access_token": "svc-token", "expires_in": 3600}))
			e.must(200, "POST", "/v1/installations/"+f.instID+"/oauth-configs/"+cfg["id"].(string)+"/token", e.key, map[string]any{})
			req := fault.Requests()[0]
			jwt := req.Form.Get(tt.field)
			header, claims := verifyJWT(t, jwt, tt.key)
			if header["alg"] != tt.alg {
				t.Errorf("alg %v, want %s", header["alg"], tt.alg)
			}
			for k, want := range tt.claims {
				if claims[k] != want {
					t.Errorf("claim %s = %v, want %s", k, claims[k], want)
				}
			}
			if claims["aud"] != fault.URL()+"/token" || claims["jti"] == "" {
				t.Errorf("aud %v, jti %v", claims["aud"], claims["jti"])
			}
			if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 300 || time.Since(time.Unix(int64(iat), 0)) > time.Minute {
				t.Errorf("iat %v exp %v", iat, exp)
			}
			if tt.field == "client_assertion" && req.Form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
				t.Errorf("client_assertion_type = %q", req.Form.Get("client_assertion_type"))
			}
			if tt.field == "assertion" && req.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
				t.Errorf("grant_type = %q", req.Form.Get("grant_type"))
			}
			if req.Form.Get("client_secret") != "" {
				t.Error("the client secret was sent as well")
			}
			if strings.Contains(e.output(), jwt) || strings.Contains(e.storedText(t), jwt) {
				t.Error("the assertion appears in an answer, a log line or the request log")
			}
		})
	}
	// A jwt_bearer config needs a secret key setting.
	e := newEnv(t)
	setupApp(e)
	wantFields(t, e.must(422, "POST", "/v1/apps/acme/oauth-configs", e.key, map[string]any{"name": "x", "grant_type": "jwt_bearer",
		"token_url": "https://p.example/token", "access_token_setting": "access_token"}), "assertion_key_setting")
}
