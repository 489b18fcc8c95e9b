// Package metrics holds Latchkey's Prometheus metrics and serves them.
//
// Labels never carry a secret, a user id, an installation id or a URL
// path: routes are Echo's patterns, hosts are the hosts Latchkey calls,
// and configs are named by their id, which is not secret and is few.
package metrics

import (
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchkey/latchkey/internal/outbound"
)

// Metrics are the collectors of one server. A nil *Metrics records
// nothing, so code under test need not make one.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	tokens    *prometheus.CounterVec
	outbound  *prometheus.HistogramVec
	refusals  prometheus.Counter
	outErrors *prometheus.CounterVec
	hooks     *prometheus.CounterVec
}

// New returns Metrics registered in a registry of their own, with Go
// runtime and process metrics, and the database pool's statistics.
func New(db *sql.DB) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "latchkey_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_token_requests_total",
			Help: "Token requests to providers, by OAuth config, kind (exchange, refresh) and outcome (ok or an error code).",
		}, []string{"config_id", "kind", "outcome"}),
		outbound: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "latchkey_outbound_request_duration_seconds",
			Help:    "Time until response headers of requests to providers and APIs, by host.",
			Buckets: prometheus.DefBuckets,
		}, []string{"host"}),
		outErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_outbound_errors_total",
			Help: "Requests to providers and APIs that got no response, by host and reason (timeout, refused, error).",
		}, []string{"host", "reason"}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latchkey_ssrf_refusals_total",
			Help: "Outbound connections refused because the address is loopback, private, link-local or a metadata service.",
		}),
		hooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_hook_events_total",
			Help: "Requests to the public webhook endpoints (/hooks/{source}), by outcome: accepted, duplicate, handshake, unverified, unroutable, ambiguous, bad_request, too_large, unknown_source, rate_limited, error.",
		}, []string{"outcome"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.tokens, m.outbound, m.outErrors, m.refusals, m.hooks,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if db != nil {
		m.reg.MustRegister(collectors.NewDBStatsCollector(db, "latchkey"))
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Request records one served HTTP request by its route pattern.
func (m *Metrics) Request(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}

// TokenRequest records a token exchange or refresh and its outcome.
func (m *Metrics) TokenRequest(configID, kind, outcome string) {
	if m == nil {
		return
	}
	m.tokens.WithLabelValues(configID, kind, outcome).Inc()
}

// HookEvent records one request to a webhook source by its outcome. The
// source is not a label: its id is its URL, which only the provider should
// know.
func (m *Metrics) HookEvent(outcome string) {
	if m == nil {
		return
	}
	m.hooks.WithLabelValues(outcome).Inc()
}

// Outbound records one outbound request: its time to response headers, or
// why it got none. It fits outbound.Options.Observe.
func (m *Metrics) Outbound(host string, d time.Duration, err error) {
	if m == nil {
		return
	}
	if err == nil {
		m.outbound.WithLabelValues(host).Observe(d.Seconds())
		return
	}
	var blocked *outbound.BlockedError
	switch {
	case errors.As(err, &blocked):
		m.refusals.Inc()
		m.outErrors.WithLabelValues(host, "refused").Inc()
	case outbound.IsTimeout(err):
		m.outErrors.WithLabelValues(host, "timeout").Inc()
	default:
		m.outErrors.WithLabelValues(host, "error").Inc()
	}
}
