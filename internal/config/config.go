// Package config reads Latchkey's configuration from the environment once,
// at start, into one struct that is passed on as a value.
package config

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is every setting the server reads; Vars describes each variable.
type Config struct {
	Addr            string         // LATCHKEY_ADDR
	DatabaseURL     string         // DATABASE_URL; empty means the embedded SQLite file
	SQLitePath      string         // LATCHKEY_SQLITE_PATH
	EncryptionKeys  string         // LATCHKEY_ENCRYPTION_KEYS, "id:base64key,..."; all open, SealingKey seals
	SealingKey      string         // LATCHKEY_SEALING_KEY, default the first key's id
	Dev             bool           // LATCHKEY_DEV, or serve -dev: allows running without a key
	LogLevel        slog.Level     // LATCHKEY_LOG_LEVEL
	LogFormat       string         // LATCHKEY_LOG_FORMAT: json or text
	ShutdownTimeout time.Duration  // LATCHKEY_SHUTDOWN_TIMEOUT
	PublicURL       string         // LATCHKEY_PUBLIC_URL: how users reach Latchkey
	OutboundAllow   []netip.Prefix // LATCHKEY_OUTBOUND_ALLOW: addresses outbound requests may reach though private
	OutboundTimeout time.Duration  // LATCHKEY_OUTBOUND_TIMEOUT: a whole request to a provider
	OutboundIdle    int            // LATCHKEY_OUTBOUND_IDLE_PER_HOST: kept-alive connections per provider host
	CacheEntries    int            // LATCHKEY_CACHE_ENTRIES: per cache; 0 turns caching off
	CacheTTL        time.Duration  // LATCHKEY_CACHE_TTL: the longest anything (a decrypted value too) stays cached
	HookRate        float64        // LATCHKEY_HOOK_RATE: requests a second each webhook source takes; 0 is no limit
	HookBurst       int            // LATCHKEY_HOOK_BURST: requests a webhook source may send at once
	RenewalShare    float64        // LATCHKEY_RENEWAL_SHARE: of the time, renewals may use the database; above 0, at most 1

	// OutboundRootCAs, set only by tests, replaces the system roots that
	// providers' certificates are verified with (a test provider on TLS);
	// no variable sets it.
	OutboundRootCAs *x509.CertPool
}

// Var is one environment variable that FromEnv reads.
type Var struct {
	Name    string
	Default string // what an unset or empty variable means; "" when that is nothing
	Usage   string
}

// Vars lists every variable FromEnv reads, with its default. It is the one
// source of both: FromEnv takes its defaults from here, and the command's
// usage text prints this list.
func Vars() []Var {
	return []Var{
		{"LATCHKEY_ADDR", ":8080", "address to listen on"},
		{"DATABASE_URL", "", "PostgreSQL URL (postgres://...); empty means the embedded SQLite file"},
		{"LATCHKEY_SQLITE_PATH", "latchkey.db", "the SQLite file, when DATABASE_URL is empty"},
		{"LATCHKEY_ENCRYPTION_KEYS", "", "id:base64key[,id:base64key...], 32-byte keys; all decrypt, LATCHKEY_SEALING_KEY encrypts new values; " +
			"required unless in dev mode (make one with 'latchkey keygen')"},
		{"LATCHKEY_SEALING_KEY", "", "the id of the key that encrypts new values; empty means the first key (see README, rotating the key)"},
		{"LATCHKEY_DEV", "false", "true is the same as serve -dev"},
		{"LATCHKEY_LOG_LEVEL", "info", "debug, info, warn or error"},
		{"LATCHKEY_LOG_FORMAT", "json", "json or text; logs go to stderr"},
		{"LATCHKEY_SHUTDOWN_TIMEOUT", "15s", "how long in-flight requests may finish after SIGTERM"},
		{"LATCHKEY_PUBLIC_URL", "http://localhost:8080", "how browsers reach Latchkey; the OAuth callback is this plus /oauth/callback"},
		{"LATCHKEY_OUTBOUND_ALLOW", "", "comma-separated IPs or CIDR prefixes that provider requests may reach although they are loopback or private"},
		{"LATCHKEY_OUTBOUND_TIMEOUT", "30s", "the longest one request to a provider may take"},
		{"LATCHKEY_OUTBOUND_IDLE_PER_HOST", "64", "kept-alive connections per provider host, so that concurrent calls reuse them"},
		{"LATCHKEY_CACHE_ENTRIES", "10000", "entries per in-memory cache (API keys, installations, values...); 0 turns caching off"},
		{"LATCHKEY_CACHE_TTL", "5m", "the longest anything stays cached, decrypted values included"},
		{"LATCHKEY_HOOK_RATE", "50", "requests a second that each webhook source (/hooks/...) takes in, per replica, on average; more answer 429. 0 turns the limit off"},
		{"LATCHKEY_HOOK_BURST", "500", "requests a webhook source may send at once, above LATCHKEY_HOOK_RATE"},
		{"LATCHKEY_RENEWAL_SHARE", "0.5", "the share of the time that token renewals may use the database when many are due at once, leaving the rest to other requests; 1 lets them use it all"},
	}
}

// FromEnv reads the configuration with getenv (os.Getenv, or a map in tests);
// an unset or empty variable takes its default from Vars.
// It returns an error naming the first variable that is malformed.
func FromEnv(getenv func(string) string) (Config, error) {
	defaults := make(map[string]string)
	for _, v := range Vars() {
		defaults[v.Name] = v.Default
	}
	get := func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return defaults[name]
	}
	c := Config{
		Addr:           get("LATCHKEY_ADDR"),
		DatabaseURL:    get("DATABASE_URL"),
		SQLitePath:     get("LATCHKEY_SQLITE_PATH"),
		EncryptionKeys: get("LATCHKEY_ENCRYPTION_KEYS"),
		LogFormat:      get("LATCHKEY_LOG_FORMAT"),
	}
	dev := get("LATCHKEY_DEV")
	var err error
	if c.Dev, err = strconv.ParseBool(dev); err != nil {
		return Config{}, fmt.Errorf("LATCHKEY_DEV: want true or false, got %q", dev)
	}
	if v := get("LATCHKEY_LOG_LEVEL"); c.LogLevel.UnmarshalText([]byte(v)) != nil {
		return Config{}, fmt.Errorf("LATCHKEY_LOG_LEVEL: want debug, info, warn or error, got %q", v)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return Config{}, fmt.Errorf("LATCHKEY_LOG_FORMAT: want json or text, got %q", c.LogFormat)
	}
	if c.ShutdownTimeout, err = positive(get("LATCHKEY_SHUTDOWN_TIMEOUT")); err != nil {
		return Config{}, fmt.Errorf("LATCHKEY_SHUTDOWN_TIMEOUT: %w", err)
	}
	c.PublicURL = strings.TrimRight(get("LATCHKEY_PUBLIC_URL"), "/")
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return Config{}, fmt.Errorf("LATCHKEY_PUBLIC_URL: want an absolute http(s) URL such as https://latchkey.example.com, got %q", c.PublicURL)
	}
	if v := get("LATCHKEY_OUTBOUND_ALLOW"); v != "" {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			p, err := netip.ParsePrefix(part)
			if err != nil {
				a, aerr := netip.ParseAddr(part)
				if aerr != nil {
					return Config{}, fmt.Errorf("LATCHKEY_OUTBOUND_ALLOW: %q is not an IP address or CIDR prefix", part)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			c.OutboundAllow = append(c.OutboundAllow, p)
		}
	}
	if c.OutboundTimeout, err = positive(get("LATCHKEY_OUTBOUND_TIMEOUT")); err != nil {
		return Config{}, fmt.Errorf("LATCHKEY_OUTBOUND_TIMEOUT: %w", err)
	}
	if err := c.readSealingKey(getenv("LATCHKEY_SEALING_KEY")); err != nil {
		return Config{}, err
	}
	if c.OutboundIdle, err = count(get("LATCHKEY_OUTBOUND_IDLE_PER_HOST"), 1); err != nil {
		return Config{}, fmt.Errorf("LATCHKEY_OUTBOUND_IDLE_PER_HOST: %w", err)
	}
	if c.CacheEntries, err = count(get("LATCHKEY_CACHE_ENTRIES"), 0); err != nil {
		return Config{}, fmt.Errorf("LATCHKEY_CACHE_ENTRIES: %w", err)
	}
	if c.CacheTTL, err = positive(get("LATCHKEY_CACHE_TTL")); err != nil {
		return Config{}, fmt.Errorf("LATCHKEY_CACHE_TTL: %w", err)
	}
	if c.HookRate, err = perSecond(get("LATCHKEY_HOOK_RATE")); err != nil {
		return Config{}, fmt.Errorf("LATCHKEY_HOOK_RATE: %w", err)
	}
	if c.HookBurst, err = count(get("LATCHKEY_HOOK_BURST"), 1); err != nil {
		return Config{}, fmt.Errorf("LATCHKEY_HOOK_BURST: %w", err)
	}
	if c.RenewalShare, err = share(get("LATCHKEY_RENEWAL_SHARE")); err != nil {
		return Config{}, fmt.Errorf("LATCHKEY_RENEWAL_SHARE: %w", err)
	}
	if strings.TrimSpace(c.Addr) == "" {
		return Config{}, fmt.Errorf("LATCHKEY_ADDR is empty")
	}
	return c, nil
}

// readSealingKey sets SealingKey to v, or to the id of the first key of
// EncryptionKeys, and checks that it names one of them. Only ids are read
// here; the keys themselves are parsed, and their errors reported, where
// the cipher is made. Errors name ids, never key material.
func (c *Config) readSealingKey(v string) error {
	var ids []string
	if strings.TrimSpace(c.EncryptionKeys) != "" {
		for _, part := range strings.Split(c.EncryptionKeys, ",") {
			id, _, _ := strings.Cut(strings.TrimSpace(part), ":")
			ids = append(ids, id)
		}
	}
	switch {
	case v == "" && len(ids) > 0:
		c.SealingKey = ids[0]
	case v == "":
	case len(ids) == 0:
		return fmt.Errorf("LATCHKEY_SEALING_KEY is %q but LATCHKEY_ENCRYPTION_KEYS is empty", v)
	case !slices.Contains(ids, v):
		return fmt.Errorf("LATCHKEY_SEALING_KEY: %q is not a key id of LATCHKEY_ENCRYPTION_KEYS (%s)", v, strings.Join(ids, ", "))
	default:
		c.SealingKey = v
	}
	return nil
}

// count reads a whole number from min to a million.
func count(v string, min int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > 1_000_000 {
		return 0, fmt.Errorf("want a whole number from %d to 1000000, got %q", min, v)
	}
	return n, nil
}

// perSecond reads a rate: a number from 0 to a million, fractions allowed
// (0.5 is one every two seconds).
func perSecond(v string) (float64, error) {
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || !(n >= 0 && n <= 1_000_000) { // !(...) refuses NaN too
		return 0, fmt.Errorf("want a number from 0 to 1000000, got %q", v)
	}
	return n, nil
}

func share(v string) (float64, error) {
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || !(n > 0 && n <= 1) { // !(...) refuses NaN too
		return 0, fmt.Errorf("want a number above 0 and at most 1, got %q", v)
	}
	return n, nil
}

func positive(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive duration such as 15s, got %q", v)
	}
	return d, nil
}
