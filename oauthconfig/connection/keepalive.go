package connection

import (
	"context"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/oauthconfig"
	"github.com/latchkey/latchkey/settings"
)

// KeepAliveJob refreshes connections left idle longer than their config's
// KeepAlive. Every replica may run it at the same time: the Refresher's
// lock and re-read make one refresh per connection.
type KeepAliveJob struct {
	db        *gorm.DB
	settings  *settings.Store
	configs   *oauthconfig.Store
	refresher *Refresher
	log       *slog.Logger
	now       func() time.Time
}

// NewKeepAliveJob returns a KeepAliveJob.
func NewKeepAliveJob(db *gorm.DB, s *settings.Store, configs *oauthconfig.Store, r *Refresher, log *slog.Logger) *KeepAliveJob {
	return &KeepAliveJob{db: db, settings: s, configs: configs, refresher: r, log: log,
		now: func() time.Time { return time.Now().UTC() }}
}

// Run refreshes idle connections every interval until ctx ends.
func (k *KeepAliveJob) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := k.RunOnce(ctx); err != nil && ctx.Err() == nil {
				k.log.Error("keeping connections alive", "error", err)
			}
		}
	}
}

// RunOnce refreshes the connections that are idle now and returns how many
// it refreshed or found refreshed by another replica. A connection whose
// refresh fails is left to its state (the failure is recorded on it).
func (k *KeepAliveJob) RunOnce(ctx context.Context) (int, error) {
	type idle struct {
		Connection
		KeepAlive int
	}
	var rows []idle
	err := k.db.WithContext(ctx).Table("connections").
		Select("connections.*, oauth_configs.keepalive_seconds AS keep_alive").
		Joins("JOIN oauth_configs ON oauth_configs.id = connections.config_id").
		Where("oauth_configs.keepalive_seconds > 0 AND connections.status = ?", Connected).
		Scan(&rows).Error
	if err != nil {
		return 0, err
	}
	now := k.now()
	n := 0
	// Many connections share an installation and a config: read each once.
	insts := map[string]settings.Installation{}
	cfgs := map[string]oauthconfig.Config{}
	for _, r := range rows {
		cutoff := now.Add(-time.Duration(r.KeepAlive) * time.Second)
		if r.IssuedAt == nil || r.IssuedAt.After(cutoff) {
			continue
		}
		inst, ok := insts[r.InstallationID]
		if !ok {
			if inst, err = k.settings.Installation(ctx, r.InstallationID); err != nil {
				return n, err
			}
			insts[r.InstallationID] = inst
		}
		cfg, ok := cfgs[r.ConfigID]
		if !ok {
			if cfg, err = k.configs.FindByID(ctx, r.ConfigID); err != nil {
				return n, err
			}
			cfgs[r.ConfigID] = cfg
		}
		if err := k.refresher.KeepAlive(ctx, inst, r.UserID, &cfg, cutoff); err != nil {
			k.log.Warn("keep-alive refresh failed", "installation_id", inst.ID, "config_id", cfg.ID, "error", err.Error())
			continue
		}
		n++
	}
	return n, nil
}
