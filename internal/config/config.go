// Package config reads Latchkey's configuration from the environment once,
// at start, into one struct that is passed on as a value.
package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is every setting the server reads. README lists each variable.
type Config struct {
	Addr            string         // LATCHKEY_ADDR, default ":8080"
	DatabaseURL     string         // DATABASE_URL; empty means the embedded SQLite file
	SQLitePath      string         // LATCHKEY_SQLITE_PATH, default "latchkey.db"
	EncryptionKeys  string         // LATCHKEY_ENCRYPTION_KEYS, "id:base64key,..."; all open, LATCHKEY_SEALING_KEY seals
	SealingKey      string         // LATCHKEY_SEALING_KEY, default the first key's id: the key new values are sealed with
	Dev             bool           // LATCHKEY_DEV, or serve -dev: allows running without a key
	LogLevel        slog.Level     // LATCHKEY_LOG_LEVEL: debug, info, warn, error; default info
	LogFormat       string         // LATCHKEY_LOG_FORMAT: json or text; default json
	ShutdownTimeout time.Duration  // LATCHKEY_SHUTDOWN_TIMEOUT, default 15s
	PublicURL       string         // LATCHKEY_PUBLIC_URL, default "http://localhost:8080": how users reach Latchkey
	OutboundAllow   []netip.Prefix // LATCHKEY_OUTBOUND_ALLOW: addresses outbound requests may reach though private
	OutboundTimeout time.Duration  // LATCHKEY_OUTBOUND_TIMEOUT, default 30s: a whole request to a provider
	OutboundIdle    int            // LATCHKEY_OUTBOUND_IDLE_PER_HOST, default 64: kept-alive connections per provider host
	CacheEntries    int            // LATCHKEY_CACHE_ENTRIES, default 10000 per cache; 0 turns caching off
	CacheTTL        time.Duration  // LATCHKEY_CACHE_TTL, default 5m: the longest anything (a decrypted value too) stays cached
}

// FromEnv reads the configuration with getenv (os.Getenv, or a map in tests).
// It returns an error naming the first variable that is malformed.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Addr:            or(getenv("LATCHKEY_ADDR"), ":8080"),
		DatabaseURL:     getenv("DATABASE_URL"),
		SQLitePath:      or(getenv("LATCHKEY_SQLITE_PATH"), "latchkey.db"),
		EncryptionKeys:  getenv("LATCHKEY_ENCRYPTION_KEYS"),
		LogFormat:       or(getenv("LATCHKEY_LOG_FORMAT"), "json"),
		ShutdownTimeout: 15 * time.Second,
	}
	if v := getenv("LATCHKEY_DEV"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("LATCHKEY_DEV: want true or false, got %q", v)
		}
		c.Dev = b
	}
	if v := getenv("LATCHKEY_LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return Config{}, fmt.Errorf("LATCHKEY_LOG_LEVEL: want debug, info, warn or error, got %q", v)
		}
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return Config{}, fmt.Errorf("LATCHKEY_LOG_FORMAT: want json or text, got %q", c.LogFormat)
	}
	if v := getenv("LATCHKEY_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("LATCHKEY_SHUTDOWN_TIMEOUT: want a positive duration such as 15s, got %q", v)
		}
		c.ShutdownTimeout = d
	}
	c.PublicURL = strings.TrimRight(or(getenv("LATCHKEY_PUBLIC_URL"), "http://localhost:8080"), "/")
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return Config{}, fmt.Errorf("LATCHKEY_PUBLIC_URL: want an absolute http(s) URL such as https://latchkey.example.com, got %q", c.PublicURL)
	}
	if v := getenv("LATCHKEY_OUTBOUND_ALLOW"); v != "" {
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
	c.OutboundTimeout = 30 * time.Second
	if v := getenv("LATCHKEY_OUTBOUND_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("LATCHKEY_OUTBOUND_TIMEOUT: want a positive duration such as 30s, got %q", v)
		}
		c.OutboundTimeout = d
	}
	if err := c.readSealingKey(getenv("LATCHKEY_SEALING_KEY")); err != nil {
		return Config{}, err
	}
	c.OutboundIdle, c.CacheEntries, c.CacheTTL = 64, 10000, 5*time.Minute
	for _, v := range []struct {
		name string
		dst  *int
		min  int
	}{{"LATCHKEY_OUTBOUND_IDLE_PER_HOST", &c.OutboundIdle, 1}, {"LATCHKEY_CACHE_ENTRIES", &c.CacheEntries, 0}} {
		if s := getenv(v.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < v.min || n > 1_000_000 {
				return Config{}, fmt.Errorf("%s: want a whole number from %d to 1000000, got %q", v.name, v.min, s)
			}
			*v.dst = n
		}
	}
	if v := getenv("LATCHKEY_CACHE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("LATCHKEY_CACHE_TTL: want a positive duration such as 5m, got %q", v)
		}
		c.CacheTTL = d
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

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
