package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/latchkey/latchkey/settings/install"
)

// sweepInstallLinks deletes install links that can no longer be used, now
// and then, like sweep does for authorize links and states.
func sweepInstallLinks(ctx context.Context, s *install.Store, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.DeleteExpired(ctx); err != nil {
				log.Warn("deleting expired install links", "error", err.Error())
			}
		}
	}
}
