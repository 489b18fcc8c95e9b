package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/latchkey/latchkey/internal/outbound"
)

// Dispatcher delivers queued webhook events, at least once: a delivery is
// claimed for a while (so replicas do not send it at the same time),
// posted, and marked delivered only after a 2xx answer. Failures are tried
// again with exponential backoff until MaxAttempts; a replica that dies
// mid-delivery leaves a claim that expires, and another sends it again.
type Dispatcher struct {
	hooks *Webhooks
	http  *outbound.Client
	log   *slog.Logger

	Batch       int           // deliveries claimed per round
	Claim       time.Duration // how long a claim keeps other replicas off
	MaxAttempts int
	// Backoff is the wait after the n-th failed attempt (n from 1).
	Backoff func(n int) time.Duration
}

// NewDispatcher returns a Dispatcher that posts through c, which must not
// follow redirects.
func NewDispatcher(hooks *Webhooks, c *outbound.Client, log *slog.Logger) *Dispatcher {
	return &Dispatcher{hooks: hooks, http: c, log: log, Batch: 20, Claim: time.Minute, MaxAttempts: 15,
		Backoff: func(n int) time.Duration {
			d := time.Duration(1<<min(n, 12)) * 5 * time.Second // 10s, 20s, ... up to about 5.7h
			return d/2 + rand.N(d/2+1)
		}}
}

// Run delivers due events every interval until ctx ends.
func (d *Dispatcher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := d.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("delivering webhooks", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeliverDue sends the deliveries that are due and returns how many it
// sent successfully.
func (d *Dispatcher) DeliverDue(ctx context.Context) (int, error) {
	now := d.hooks.now()
	var due []Delivery
	err := d.hooks.db.WithContext(ctx).
		Where("delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until < ?)", now, now).
		Order("next_attempt_at").Limit(d.Batch).Find(&due).Error
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, dl := range due {
		// Claim it: only one replica's conditional update succeeds.
		res := d.hooks.db.WithContext(ctx).Model(&Delivery{}).
			Where("id = ? AND delivered_at IS NULL AND (locked_until IS NULL OR locked_until < ?)", dl.ID, now).
			Update("locked_until", now.Add(d.Claim))
		if res.Error != nil {
			return sent, res.Error
		}
		if res.RowsAffected == 0 {
			continue
		}
		if d.deliver(ctx, dl) {
			sent++
		}
	}
	return sent, nil
}

// deliver posts one delivery and records the outcome.
func (d *Dispatcher) deliver(ctx context.Context, dl Delivery) bool {
	status, err := d.post(ctx, dl)
	if err != nil && ctx.Err() != nil {
		// Stopped mid-delivery (the server is shutting down): no fault of
		// the receiver's, so no attempt is counted. The claim expires and
		// a replica sends it again, as after a crash.
		return false
	}
	now := d.hooks.now()
	updates := map[string]any{"attempts": dl.Attempts + 1, "last_status": status, "locked_until": nil}
	ok := err == nil
	if ok {
		updates["delivered_at"] = now
		updates["last_error"] = ""
	} else {
		updates["last_error"] = clip(err.Error(), 500)
		if dl.Attempts+1 >= d.MaxAttempts {
			updates["failed_at"] = now
		} else {
			updates["next_attempt_at"] = now.Add(d.Backoff(dl.Attempts + 1))
		}
	}
	// The outcome is kept even when ctx ends meanwhile: a delivery the
	// receiver took must not be sent again only because the server stopped.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.hooks.db.WithContext(rctx).Model(&Delivery{}).Where("id = ?", dl.ID).Updates(updates).Error; err != nil {
		d.log.Error("recording a webhook delivery", "delivery_id", dl.ID, "error", err)
	}
	return ok
}

func (d *Dispatcher) post(ctx context.Context, dl Delivery) (int, error) {
	var h Webhook
	if err := d.hooks.db.WithContext(ctx).Where("id = ?", dl.WebhookID).Take(&h).Error; err != nil {
		return 0, fmt.Errorf("reading the webhook: %w", err)
	}
	key, err := d.hooks.cipher.Open(h.Secret, sealAAD(h.ID))
	if err != nil {
		return 0, errors.New("the webhook's secret cannot be decrypted")
	}
	body := []byte(dl.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("the webhook URL is not valid")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Latchkey-Webhooks/1")
	req.Header.Set("Latchkey-Event", dl.Event)
	req.Header.Set("Latchkey-Delivery", dl.ID)
	req.Header.Set("Latchkey-Signature", Sign(key, d.hooks.now(), body))
	resp, err := d.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which the developer may have put a token in
		}
		return 0, err
	}
	d.http.ReadAll(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("the receiver answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
