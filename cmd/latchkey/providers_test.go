package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509/pkix"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testpki"
)

// provider is a real provider's documented shape, as an app developer
// would configure it through the REST API alone.
type provider struct {
	name     string
	settings []map[string]any  // besides client_id, client_secret, access_token, refresh_token
	config   map[string]any    // besides name, access_token_setting, refresh_token_setting
	values   map[string]string // the installation's, besides client_id and client_secret
	api      map[string]any    // an API using the tokens, if the shape needs one
}

// providerCatalogue holds shapes that need more than RFC 6749's defaults,
// each as its provider documents it; the comments say what it exercises.
func providerCatalogue(signingKey, certificate string) []provider {
	user := func(key string, more ...any) map[string]any {
		m := map[string]any{"key": key, "level": "user"}
		for i := 0; i+1 < len(more); i += 2 {
			m[more[i].(string)] = more[i+1]
		}
		return m
	}
	org := func(key string, more ...any) map[string]any {
		m := user(key, more...)
		m["level"] = "organization"
		return m
	}
	link := func(base string, extra string) string {
		return base + "?client_id=<<client_id>>&redirect_uri=<<redirect_uri>>&response_type=code&scope=<<scope>>" + extra
	}
	return []provider{
		{name: "google", // offline access, an identity request
			config: map[string]any{"link_url": link("https://accounts.google.com/o/oauth2/v2/auth", "&access_type=offline&prompt=consent"),
				"token_url": "https://oauth2.googleapis.com/token", "scopes": []string{"openid", "https://www.googleapis.com/auth/drive.readonly"},
				"identity_url": "https://openidconnect.googleapis.com/v1/userinfo", "identity_headers": map[string]string{"Authorization": "Bearer <<access_token>>"},
				"identity_mappings": []map[string]any{{"path": "$.sub", "setting": "provider_user"}}},
			settings: []map[string]any{user("provider_user")}},
		{name: "microsoft", // the tenant in the URLs, a setting with a default
			settings: []map[string]any{org("tenant", "default", "common")},
			config: map[string]any{"link_url": link("https://login.microsoftonline.com/<<tenant>>/oauth2/v2.0/authorize", "&response_mode=query"),
				"token_url": "https://login.microsoftonline.com/<<tenant>>/oauth2/v2.0/token", "scopes": []string{"offline_access", "User.Read"}}},
		{name: "slack", // a user token and a bot token, comma-separated scopes, errors answered with 200
			settings: []map[string]any{user("bot_token", "secret", true), user("slack_team")},
			config: map[string]any{"link_url": "https://slack.com/oauth/v2/authorize?client_id=<<client_id>>&scope=<<scope>>&user_scope=search:read&redirect_uri=<<redirect_uri>>",
				"token_url": "https://slack.com/api/oauth.v2.access", "scopes": []string{"chat:write", "channels:read"}, "scope_separator": ",",
				"pkce": "off", "access_token_path": "$.authed_user.access_token | $.access_token",
				"refresh_token_path": "$.authed_user.refresh_token | $.refresh_token",
				"mappings":           []map[string]any{{"path": "$.access_token", "setting": "bot_token"}, {"path": "$.team.id", "setting": "slack_team"}},
				"grant_gone_errors":  []string{"invalid_refresh_token", "token_revoked"}}},
		{name: "github", // a custom Accept, no response_type in the link
			config: map[string]any{"link_url": "https://github.com/login/oauth/authorize?client_id=<<client_id>>&redirect_uri=<<redirect_uri>>&scope=<<scope>>",
				"token_url": "https://github.com/login/oauth/access_token", "headers": map[string]string{"Accept": "application/vnd.github+json"},
				"scopes": []string{"repo"}, "identity_url": "https://api.github.com/user",
				"identity_headers":  map[string]string{"Authorization": "Bearer <<access_token>>", "X-GitHub-Api-Version": "2022-11-28"},
				"identity_mappings": []map[string]any{{"path": "$.login", "setting": "provider_user"}}},
			settings: []map[string]any{user("provider_user")}},
		{name: "salesforce", // My Domain host, instance_url from the token answer as the API's base
			settings: []map[string]any{org("sf_domain", "type", "host", "default", "login.salesforce.com"), user("instance_url", "type", "url")},
			config: map[string]any{"link_url": link("https://<<sf_domain>>/services/oauth2/authorize", ""),
				"token_url": "https://<<sf_domain>>/services/oauth2/token", "scopes": []string{"api", "refresh_token"},
				"mappings": []map[string]any{{"path": "$.instance_url", "setting": "instance_url", "required": true}}, "default_expires_in": 7200},
			api: map[string]any{"base_url": "<<instance_url>>/services/data/v60.0", "headers": map[string]string{"Authorization": "Bearer <<access_token>>"}}},
		{name: "zoho", // the accounts server from the redirect, used by the same flow's exchange
			settings: []map[string]any{user("accounts_server", "type", "url", "pattern", `^https://accounts\.zoho\.(com|eu|in|com\.au|jp|ca|com\.cn)$`),
				user("api_domain", "type", "url")},
			config: map[string]any{"link_url": link("https://accounts.zoho.com/oauth/v2/auth", "&access_type=offline&prompt=consent"),
				"token_url": "<<accounts_server>>/oauth/v2/token", "scopes": []string{"ZohoCRM.modules.ALL"}, "scope_separator": ",",
				"callback_mappings": []map[string]string{{"param": "accounts-server", "setting": "accounts_server"}},
				"mappings":          []map[string]any{{"path": "$.api_domain", "setting": "api_domain"}}},
			api: map[string]any{"base_url": "<<api_domain>>/crm/v5", "headers": map[string]string{"Authorization": "Zoho-oauthtoken <<access_token>>"}}},
		{name: "quickbooks", // Basic client authentication, the company id from the redirect
			settings: []map[string]any{org("realm_id")},
			config: map[string]any{"link_url": link("https://appcenter.intuit.com/connect/oauth2", ""), "client_auth": "basic",
				"token_url": "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer", "scopes": []string{"com.intuit.quickbooks.accounting"},
				"callback_mappings": []map[string]string{{"param": "realmId", "setting": "realm_id"}}},
			api: map[string]any{"base_url": "https://quickbooks.api.intuit.com/v3/company/<<realm_id>>", "headers": map[string]string{"Authorization": "Bearer <<access_token>>"}}},
		{name: "xero", // the tenant from an identity answer that is a list
			settings: []map[string]any{user("xero_tenant_id")},
			config: map[string]any{"link_url": link("https://login.xero.com/identity/connect/authorize", ""), "client_auth": "basic",
				"token_url": "https://identity.xero.com/connect/token", "scopes": []string{"offline_access", "accounting.transactions"},
				"identity_url": "https://api.xero.com/connections", "identity_headers": map[string]string{"Authorization": "Bearer <<access_token>>"},
				"identity_mappings": []map[string]any{{"path": "$[0].tenantId", "setting": "xero_tenant_id"}}},
			api: map[string]any{"base_url": "https://api.xero.com/api.xro/2.0", "headers": map[string]string{"Authorization": "Bearer <<access_token>>", "Xero-tenant-id": "<<xero_tenant_id>>"}}},
		{name: "shopify", // the shop's own host, a JSON token request, tokens that do not expire
			settings: []map[string]any{org("shop", "type", "host", "pattern", `^[a-z0-9][a-z0-9-]*\.myshopify\.com$`)},
			values:   map[string]string{"shop": "acme-store.myshopify.com"},
			config: map[string]any{"link_url": link("https://<<shop>>/admin/oauth/authorize", ""), "pkce": "off",
				"token_url": "https://<<shop>>/admin/oauth/access_token", "body_format": "json",
				"token_body": `{"client_id": "<<client_id>>", "client_secret": "<<client_secret>>", "code": "<<auth_code>>"}`,
				"scopes":     []string{"read_products"}, "scope_separator": ",", "default_expires_in": 31622400},
			api: map[string]any{"base_url": "https://<<shop>>/admin/api/2024-10", "headers": map[string]string{"X-Shopify-Access-Token": "<<access_token>>"}}},
		{name: "atlassian", // a JSON token request, the installation's site picked from a list by a filter
			settings: []map[string]any{org("site_url", "type", "url"), user("cloud_id")},
			values:   map[string]string{"site_url": "https://acme.atlassian.net"},
			config: map[string]any{"link_url": link("https://auth.atlassian.com/authorize", "&audience=api.atlassian.com&prompt=consent"),
				"token_url": "https://auth.atlassian.com/oauth/token", "body_format": "json", "scopes": []string{"read:jira-work", "offline_access"},
				"identity_url": "https://api.atlassian.com/oauth/token/accessible-resources", "identity_headers": map[string]string{"Authorization": "Bearer <<access_token>>"},
				"identity_mappings": []map[string]any{{"path": `$[?(@.url == "<<site_url>>")].id`, "setting": "cloud_id"}}},
			api: map[string]any{"base_url": "https://api.atlassian.com/ex/jira/<<cloud_id>>/rest/api/3", "headers": map[string]string{"Authorization": "Bearer <<access_token>>"}}},
		{name: "instagram", // a step trades the short-lived token for a long-lived one, which GETs refresh
			config: map[string]any{"link_url": link("https://www.instagram.com/oauth/authorize", ""), "pkce": "off",
				"token_url": "https://api.instagram.com/oauth/access_token", "scopes": []string{"instagram_business_basic"}, "scope_separator": ",",
				"refresh_url": "https://graph.instagram.com/refresh_access_token", "refresh_method": "GET",
				"refresh_body": "grant_type=ig_refresh_token&access_token=<<refresh_token>>", "refresh_token_path": "$.refresh_token | $.access_token",
				"steps": []map[string]any{{"name": "long_lived",
					"url":               "https://graph.instagram.com/access_token?grant_type=ig_exchange_token&client_secret=<<client_secret>>&access_token=<<access_token>>",
					"access_token_path": "$.access_token", "refresh_token_path": "$.access_token", "expires_in_path": "$.expires_in"}}}},
		{name: "facebook", // the code exchanged with a GET, then a long-lived token
			config: map[string]any{"link_url": "https://www.facebook.com/v19.0/dialog/oauth?client_id=<<client_id>>&redirect_uri=<<redirect_uri>>&scope=<<scope>>", "pkce": "off",
				"token_url": "https://graph.facebook.com/v19.0/oauth/access_token", "token_method": "GET", "scopes": []string{"pages_show_list"}, "scope_separator": ",",
				"steps": []map[string]any{{"name": "long_lived",
					"url":               "https://graph.facebook.com/v19.0/oauth/access_token?grant_type=fb_exchange_token&client_id=<<client_id>>&client_secret=<<client_secret>>&fb_exchange_token=<<access_token>>",
					"access_token_path": "$.access_token", "expires_in_path": "$.expires_in"}}}},
		{name: "bullhorn", // parameters in the query, a REST login after each exchange and refresh
			settings: []map[string]any{user("bh_rest_token", "secret", true), user("rest_url")},
			config: map[string]any{"link_url": "https://auth.bullhornstaffing.com/oauth/authorize?client_id=<<client_id>>&response_type=code&redirect_uri=<<redirect_uri>>", "pkce": "off",
				"token_url": "https://auth.bullhornstaffing.com/oauth/token", "token_params": "query",
				"steps": []map[string]any{{"name": "login", "method": "POST",
					"url": "https://rest.bullhornstaffing.com/rest-services/login?version=2.0&access_token=<<access_token>>",
					"mappings": []map[string]any{{"path": "$.BhRestToken", "setting": "bh_rest_token", "required": true},
						{"path": "$.restUrl", "setting": "rest_url", "required": true}}, "on_refresh": true}}}},
		{name: "mailchimp", // tokens that never expire, the data center from a metadata step as the API's base
			settings: []map[string]any{user("api_endpoint", "type", "url")},
			config: map[string]any{"link_url": "https://login.mailchimp.com/oauth2/authorize?response_type=code&client_id=<<client_id>>&redirect_uri=<<redirect_uri>>", "pkce": "off",
				"token_url": "https://login.mailchimp.com/oauth2/token", "default_expires_in": 31622400,
				"steps": []map[string]any{{"name": "metadata", "url": "https://login.mailchimp.com/oauth2/metadata",
					"headers":  map[string]string{"Authorization": "OAuth <<access_token>>"},
					"mappings": []map[string]any{{"path": "$.api_endpoint", "setting": "api_endpoint", "required": true}}}}},
			api: map[string]any{"base_url": "<<api_endpoint>>/3.0", "headers": map[string]string{"Authorization": "Bearer <<access_token>>"}}},
		{name: "pipedrive", // Basic authentication, the company's API domain from the token answer
			settings: []map[string]any{user("api_domain", "type", "url")},
			config: map[string]any{"link_url": "https://oauth.pipedrive.com/oauth/authorize?client_id=<<client_id>>&redirect_uri=<<redirect_uri>>", "client_auth": "basic",
				"token_url": "https://oauth.pipedrive.com/oauth/token", "mappings": []map[string]any{{"path": "$.api_domain", "setting": "api_domain", "required": true}}},
			api: map[string]any{"base_url": "<<api_domain>>/api/v1", "headers": map[string]string{"Authorization": "Bearer <<access_token>>"}}},
		{name: "notion", // Basic authentication, a JSON body, a version header on calls
			settings: []map[string]any{user("workspace_id")},
			config: map[string]any{"link_url": "https://api.notion.com/v1/oauth/authorize?client_id=<<client_id>>&response_type=code&owner=user&redirect_uri=<<redirect_uri>>",
				"client_auth": "basic", "body_format": "json", "pkce": "off", "token_url": "https://api.notion.com/v1/oauth/token",
				"mappings": []map[string]any{{"path": "$.workspace_id", "setting": "workspace_id"}}},
			api: map[string]any{"base_url": "https://api.notion.com/v1", "headers": map[string]string{"Authorization": "Bearer <<access_token>>", "Notion-Version": "2022-06-28"}}},
		{name: "x", // PKCE with a confidential client's Basic authentication
			config: map[string]any{"link_url": link("https://x.com/i/oauth2/authorize", ""), "client_auth": "basic",
				"token_url": "https://api.x.com/2/oauth2/token", "scopes": []string{"tweet.read", "users.read", "offline.access"}}},
		{name: "reddit", // a permanent grant asked for in the link, a User-Agent the provider requires
			config: map[string]any{"link_url": link("https://www.reddit.com/api/v1/authorize", "&duration=permanent"), "client_auth": "basic",
				"token_url": "https://www.reddit.com/api/v1/access_token", "scopes": []string{"identity", "read"},
				"headers": map[string]string{"User-Agent": "web:latchkey-example:v1.0 (by /u/latchkey)"}}},
		{name: "intercom", // the region's URL or the default, through first()
			settings: []map[string]any{org("region_url", "type", "url")},
			config: map[string]any{"link_url": `<<first(region_url "https://app.intercom.com")>>/oauth?client_id=<<client_id>>&redirect_uri=<<redirect_uri>>`, "pkce": "off",
				"token_url": "https://api.intercom.io/auth/eagle/token", "default_expires_in": 31622400}},
		{name: "procore", // an optional company header on calls
			settings: []map[string]any{user("company_id")},
			config: map[string]any{"link_url": "https://login.procore.com/oauth/authorize?client_id=<<client_id>>&response_type=code&redirect_uri=<<redirect_uri>>",
				"token_url": "https://login.procore.com/oauth/token"},
			api: map[string]any{"base_url": "https://api.procore.com/rest/v1.0", "headers": map[string]string{"Authorization": "Bearer <<access_token>>", "Procore-Company-Id": "<<company_id?>>"}}},
		{name: "google-ads", // a developer token and an optional manager account header
			settings: []map[string]any{org("developer_token", "secret", true), org("login_customer_id")},
			values:   map[string]string{"developer_token": "dev-token-123"},
			config: map[string]any{"link_url": link("https://accounts.google.com/o/oauth2/v2/auth", "&access_type=offline&prompt=consent"),
				"token_url": "https://oauth2.googleapis.com/token", "scopes": []string{"https://www.googleapis.com/auth/adwords"}},
			api: map[string]any{"base_url": "https://googleads.googleapis.com/v17", "headers": map[string]string{"Authorization": "Bearer <<access_token>>",
				"developer-token": "<<developer_token>>", "login-customer-id": "<<login_customer_id?>>"}}},
		{name: "looker", // a host with a port, client credentials in a form body
			settings: []map[string]any{org("looker_host", "type", "host"), org("app_token", "secret", true)},
			values:   map[string]string{"looker_host": "acme.cloud.looker.com:19999"},
			config: map[string]any{"grant_type": "client_credentials", "token_url": "https://<<looker_host>>/api/4.0/login",
				"token_body": "client_id=<<client_id>>&client_secret=<<client_secret>>", "access_token_setting": "app_token", "refresh_token_setting": ""}},
		{name: "okta-service", // client credentials with a private_key_jwt assertion
			settings: []map[string]any{org("okta_domain", "type", "host"), org("signing_key", "secret", true), org("app_token", "secret", true)},
			values:   map[string]string{"okta_domain": "acme.okta.com", "signing_key": signingKey},
			config: map[string]any{"grant_type": "client_credentials", "token_url": "https://<<okta_domain>>/oauth2/v1/token",
				"client_auth": "private_key_jwt", "assertion_key_setting": "signing_key", "scopes": []string{"okta.users.read"},
				"access_token_setting": "app_token", "refresh_token_setting": ""}},
		{name: "google-service-account", // the JWT bearer grant, claims as templates
			settings: []map[string]any{org("service_account_email"), org("signing_key", "secret", true), org("app_token", "secret", true)},
			values:   map[string]string{"service_account_email": "svc@acme.iam.gserviceaccount.com", "signing_key": signingKey},
			config: map[string]any{"grant_type": "jwt_bearer", "token_url": "https://oauth2.googleapis.com/token",
				"assertion_key_setting": "signing_key", "assertion_alg": "RS256",
				"assertion_claims":     map[string]string{"iss": "<<service_account_email>>", "scope": "https://www.googleapis.com/auth/drive.readonly", "aud": "https://oauth2.googleapis.com/token"},
				"access_token_setting": "app_token", "refresh_token_setting": ""}},
		{name: "docusign", // the JWT bearer grant with the user to impersonate
			settings: []map[string]any{org("docusign_user_id"), org("signing_key", "secret", true), org("app_token", "secret", true)},
			values:   map[string]string{"docusign_user_id": "0f3a5b2c-0000-4000-8000-1234567890ab", "signing_key": signingKey},
			config: map[string]any{"grant_type": "jwt_bearer", "token_url": "https://account-d.docusign.com/oauth/token",
				"assertion_key_setting": "signing_key",
				"assertion_claims":      map[string]string{"iss": "<<client_id>>", "sub": "<<docusign_user_id>>", "aud": "account-d.docusign.com", "scope": "signature impersonation"},
				"access_token_setting":  "app_token", "refresh_token_setting": ""}},
		{name: "adp", // client credentials with Basic authentication over mutual TLS (RFC 8705)
			settings: []map[string]any{org("adp_cert", "type", "certificate", "secret", true), org("adp_key", "type", "private_key", "secret", true),
				org("app_token", "secret", true)},
			values: map[string]string{"adp_cert": certificate, "adp_key": signingKey},
			config: map[string]any{"grant_type": "client_credentials", "token_url": "https://accounts.adp.com/auth/oauth/v2/token", "client_auth": "basic",
				"client_cert_setting": "adp_cert", "client_key_setting": "adp_key", "access_token_setting": "app_token", "refresh_token_setting": ""},
			api: map[string]any{"base_url": "https://api.adp.com/hr/v2", "headers": map[string]string{"Authorization": "Bearer <<app_token>>"}}},
		{name: "revolut-business", // the authorization code with a private_key_jwt client assertion
			settings: []map[string]any{org("signing_key", "secret", true)},
			values:   map[string]string{"signing_key": signingKey},
			config: map[string]any{"link_url": "https://business.revolut.com/app-confirm?client_id=<<client_id>>&redirect_uri=<<redirect_uri>>&response_type=code", "pkce": "off",
				"token_url": "https://b2b.revolut.com/api/1.0/auth/token", "client_auth": "private_key_jwt", "assertion_key_setting": "signing_key",
				"assertion_claims": map[string]string{"iss": "platform.example", "aud": "https://revolut.com"}}},
	}
}

// TestProviderCatalogue: real providers' documented shapes are accepted
// through the REST API alone, and explain renders every request each
// would send, with nothing missing and no secret shown.
func TestProviderCatalogue(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signingKey := testpki.PEMKey(t, key)
	certificate := testpki.SelfSigned(t, key, pkix.Name{CommonName: "platform.example"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)).Chain
	for _, p := range providerCatalogue(signingKey, certificate) {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t)
			app := e.must(201, "POST", "/v1/apps", e.key, map[string]any{"name": p.name, "slug": p.name})["id"].(string)
			base := "/v1/apps/" + app
			defs := append([]map[string]any{
				{"key": "client_id", "required": true}, {"key": "client_secret", "secret": true},
				{"key": "access_token", "level": "user", "secret": true}, {"key": "refresh_token", "level": "user", "secret": true},
			}, p.settings...)
			for _, d := range defs {
				e.must(201, "POST", base+"/settings", e.key, d)
			}
			values := map[string]string{"client_id": "client-" + p.name, "client_secret": "secret-of-" + p.name}
			for k, v := range p.values {
				values[k] = v
			}
			inst := e.must(201, "POST", "/v1/installations", e.key, map[string]any{"app_id": app, "organization_id": "org-" + p.name, "values": values})["id"].(string)
			body := map[string]any{"name": p.name, "access_token_setting": "access_token", "refresh_token_setting": "refresh_token"}
			for k, v := range p.config {
				body[k] = v
			}
			r := e.call("POST", base+"/oauth-configs", e.key, body)
			if r.status != 201 {
				t.Fatalf("config refused: %d %s", r.status, r.body)
			}
			cfg := r.json(t)
			if p.api != nil {
				api := map[string]any{"name": p.name, "config_id": cfg["id"]}
				for k, v := range p.api {
					api[k] = v
				}
				e.must(201, "POST", base+"/apis", e.key, api)
			}
			ex := e.must(200, "POST", base+"/oauth-configs/"+cfg["id"].(string)+"/explain", e.key, map[string]any{"installation_id": inst, "user_id": "user-1"})
			if problems := ex["problems"].([]any); len(problems) > 0 {
				t.Errorf("explain: %v", problems)
			}
			if ex["token_request"] == nil {
				t.Errorf("explain shows no token request: %v", ex)
			}
			if _, ok := p.config["link_url"]; ok && ex["link_url"] == nil {
				t.Errorf("explain shows no link: %v", ex)
			}
			if steps, _ := p.config["steps"].([]map[string]any); len(steps) > 0 {
				if got, _ := ex["steps"].([]any); len(got) < len(steps) {
					t.Errorf("explain shows steps %v", ex["steps"])
				}
			}
			out := string(mustJSON(t, ex))
			if _, ok := p.config["client_cert_setting"]; ok && ex["client_certificate"] == nil {
				t.Errorf("explain does not show the client certificate: %v", ex)
			}
			if strings.Contains(out, values["client_secret"]) || strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, "BEGIN CERTIFICATE") {
				t.Errorf("explain shows a secret: %s", out)
			}
		})
	}
}
