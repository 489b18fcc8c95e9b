package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/callback"
	"github.com/latchkey/latchkey/internal/oauthtest"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/settings"
)

// TestRotateCommand stores secrets of every kind through a running server
// sealed with its key "test", then re-encrypts them with a new key k2 through
// run, as an operator would, and reads them back with k2 alone.
func TestRotateCommand(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := newProvider(t, e, oauthtest.AuthBasic)
	f := newFlowApp(t, e, providerConfig(p, "basic")) // client_secret, sealed
	tokens := map[string]string{}
	for _, u := range []string{"u1", "u2", "u3"} {
		tokens[u] = canary(t)
		e.must(200, "PATCH", "/v1/installations/"+f.instID+"/users/"+u+"/settings", e.key,
			map[string]any{"values": map[string]any{"access_token": tokens[u]}})
	}
	b := newBrowser(t)
	if status, _, _ := b.get(f.link("u1", "")); status != 302 && status != 303 {
		t.Fatalf("authorize link answered %d", status) // a state with a sealed PKCE verifier
	}
	hook := e.must(201, "POST", "/v1/apps/acme/webhooks", e.key, map[string]any{"url": "https://platform.example/hook"})
	hookSecret := hook["secret"].(string)

	newKey := secret.Key{ID: "k2", Secret: bytes.Repeat([]byte{9}, secret.KeySize)}
	ringSpec := func(keys ...secret.Key) string {
		var parts []string
		for _, k := range keys {
			parts = append(parts, k.ID+":"+base64.StdEncoding.EncodeToString(k.Secret))
		}
		return strings.Join(parts, ",")
	}
	ring := ringSpec(newKey, testKeys[0])
	getenv := func(k string) string {
		return map[string]string{
			"DATABASE_URL":             e.db.URL,
			"LATCHKEY_SQLITE_PATH":     e.db.SQLitePath,
			"LATCHKEY_ENCRYPTION_KEYS": ring,
		}[k]
	}
	stored := func() []string {
		var vs []string
		e.db.Raw(`SELECT value FROM organization_values WHERE encrypted = ? UNION ALL SELECT value FROM user_values WHERE encrypted = ?
			UNION ALL SELECT code_verifier FROM oauth_states WHERE code_verifier <> '' UNION ALL SELECT secret FROM webhooks`, true, true).Scan(&vs)
		slices.Sort(vs)
		return vs
	}
	before := stored()
	if len(before) != 6 {
		t.Fatalf("%d sealed values stored, want 6 (client secret, 3 tokens, a verifier, a webhook secret)", len(before))
	}
	// Nothing in any output may be a value: plaintexts, ciphertexts, keys.
	var all bytes.Buffer
	reencrypt := func(args ...string) (string, error) {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(ctx, append([]string{"reencrypt"}, args...), getenv, &out, &errOut)
		all.Write(out.Bytes())
		all.Write(errOut.Bytes())
		if err != nil {
			all.WriteString(err.Error())
		}
		return out.String(), err
	}

	out, err := reencrypt("-dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "total: 6 would be re-encrypted") || !slices.Equal(stored(), before) {
		t.Fatalf("dry run changed values or miscounted:\n%s", out)
	}

	out, err = reencrypt("-batch-size", "2")
	if err != nil {
		t.Fatalf("reencrypt: %v\n%s", err, out)
	}
	for _, want := range []string{
		"user_values.value: batch 1: 2 of 3 re-encrypted",
		"user_values.value: batch 2: 3 of 3 re-encrypted",
		"user_values.value: 3 found not sealed with \"k2\", 3 re-encrypted, 0 changed meanwhile, 0 cannot be decrypted, 0 remaining",
		"organization_values.value: 1 found",
		"oauth_states.code_verifier: 1 found",
		"webhooks.secret: 1 found",
		"total: 6 re-encrypted, 0 changed meanwhile, 0 cannot be decrypted, 0 remaining not sealed with \"k2\"",
		"the other keys may now be removed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, v := range stored() {
		if !strings.HasPrefix(v, "v1:k2:") {
			t.Errorf("a value is still sealed as %.8q", v)
		}
	}

	// Everything reads back with the new key alone.
	onlyNew, err := secret.New([]secret.Key{newKey})
	if err != nil {
		t.Fatal(err)
	}
	store := settings.NewStore(e.db.DB, onlyNew)
	inst, err := store.Installation(ctx, f.instID)
	if err != nil {
		t.Fatal(err)
	}
	for u, tok := range tokens {
		r, err := store.Resolve(ctx, inst, u)
		if err != nil {
			t.Fatal(err)
		}
		if r.Values["access_token"] != tok || r.Values["client_secret"] != testClientSecret {
			t.Errorf("user %s: values differ after re-encryption", u)
		}
	}
	var st callback.State
	e.db.Where("code_verifier <> ''").Take(&st)
	if _, err := onlyNew.Open(st.CodeVerifier, "state:"+st.StateHash); err != nil {
		t.Errorf("the PKCE verifier does not open with k2: %v", err)
	}
	var hookRow struct{ ID, Secret string }
	e.db.Raw("SELECT id, secret FROM webhooks").Scan(&hookRow)
	if got, err := onlyNew.Open(hookRow.Secret, "webhook:"+hookRow.ID); err != nil || got != hookSecret {
		t.Errorf("the webhook secret does not open with k2: %v", err)
	}

	// Again: nothing left to do.
	if out, err = reencrypt(); err != nil || !strings.Contains(out, "total: 0 re-encrypted") {
		t.Errorf("second run: %v\n%s", err, out)
	}

	// A value no configured key opens is named by its row, the others are
	// still re-encrypted, and the command fails.
	stray, err := secret.New([]secret.Key{{ID: "k0", Secret: bytes.Repeat([]byte{3}, secret.KeySize)}})
	if err != nil {
		t.Fatal(err)
	}
	lost := canary(t)
	if err := settings.NewStore(e.db.DB, stray).SetUserValues(ctx, inst, "u4", map[string]*string{"access_token": &lost}); err != nil {
		t.Fatal(err)
	}
	tok := canary(t)
	if err := settings.NewStore(e.db.DB, e.cipher).SetUserValues(ctx, inst, "u5", map[string]*string{"access_token": &tok}); err != nil {
		t.Fatal(err)
	}
	out, err = reencrypt()
	if err == nil || !strings.Contains(err.Error(), "1 value(s) cannot be decrypted") {
		t.Fatalf("err = %v, want 1 value that cannot be decrypted\n%s", err, out)
	}
	if !strings.Contains(out, `user_values.value: cannot be decrypted with any configured key: installation_id="`+f.instID+`" user_id="u4" key="access_token"`) ||
		!strings.Contains(out, "total: 1 re-encrypted, 0 changed meanwhile, 1 cannot be decrypted, 1 remaining") {
		t.Errorf("output does not report the stray row and the other value:\n%s", out)
	}
	if r, err := store.Resolve(ctx, inst, "u5"); err != nil || r.Values["access_token"] != tok {
		t.Errorf("the value beside the stray one was not re-encrypted: %v", err)
	}

	for _, bad := range [][]string{{"-batch-size", "0"}, {"-nope"}} {
		if _, err := reencrypt(bad...); err == nil {
			t.Errorf("reencrypt %v succeeded", bad)
		}
	}
	if err := run(ctx, []string{"reencrypt"}, func(k string) string {
		if k == "LATCHKEY_ENCRYPTION_KEYS" {
			return ""
		}
		return getenv(k)
	}, &all, &all); err == nil {
		t.Error("reencrypt ran without LATCHKEY_ENCRYPTION_KEYS")
	}

	secrets := append([]string{testClientSecret, hookSecret, lost, tok, st.CodeVerifier, ring,
		base64.StdEncoding.EncodeToString(newKey.Secret)}, before...)
	for _, v := range tokens {
		secrets = append(secrets, v)
	}
	for _, s := range secrets {
		if strings.Contains(all.String(), s) {
			t.Errorf("the output contains a secret value or key (%.10s...)", s)
		}
	}
}

// TestRotateCommandInterrupted: a context that ends (SIGINT, SIGTERM) makes
// the command fail, saying how to resume.
func TestRotateCommandInterrupted(t *testing.T) {
	e := newEnv(t)
	setupApp(e)
	e.must(201, "POST", "/v1/installations", e.key, map[string]any{
		"app_id": "acme", "organization_id": "org-1", "values": map[string]string{"client_id": "c", "client_secret": canary(t)}})
	getenv := func(k string) string {
		return map[string]string{
			"DATABASE_URL":             e.db.URL,
			"LATCHKEY_SQLITE_PATH":     e.db.SQLitePath,
			"LATCHKEY_ENCRYPTION_KEYS": "k2:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, secret.KeySize)) + ",test:" + base64.StdEncoding.EncodeToString(testKeys[0].Secret),
		}[k]
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	// Cancel as soon as the command says it starts, before any batch.
	w := writerFunc(func(p []byte) (int, error) {
		if bytes.Contains(p, []byte("re-encrypting stored secrets")) {
			cancel()
		}
		return out.Write(p)
	})
	err := run(ctx, []string{"reencrypt"}, getenv, w, &out)
	if err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "run 'latchkey reencrypt' again to resume") {
		t.Fatalf("err = %v, want an interruption saying how to resume\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "not finished") {
		t.Errorf("summary does not say the run is unfinished:\n%s", out.String())
	}
	if err := run(context.Background(), []string{"reencrypt"}, getenv, &out, &out); err != nil {
		t.Fatalf("resumed run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "total: 1 re-encrypted, 0 changed meanwhile, 0 cannot be decrypted, 0 remaining") {
		t.Errorf("the resumed run did not finish the job:\n%s", out.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
