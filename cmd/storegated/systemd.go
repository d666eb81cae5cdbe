package main

import (
	"context"

	"github.com/coreos/go-systemd/v22/daemon"

	"storegate/internal/loop"
)

// notify sends state to systemd (sd_notify). Outside systemd, where
// NOTIFY_SOCKET is unset, it does nothing.
func (m *Main) notify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		m.logger.Warn("sd_notify failed", "err", err)
	}
}

// watchdog pings systemd's watchdog at a third of WatchdogSec, but only
// while the health checker has recently written the store: a gateway that
// cannot record decisions, or whose checker is stuck, stops pinging and
// systemd restarts it. Without WATCHDOG_USEC it returns at once.
func (m *Main) watchdog(ctx context.Context) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		m.logger.Warn("systemd watchdog settings unreadable; not pinging", "err", err)
		return
	}
	if interval <= 0 {
		return
	}
	m.logger.Info("systemd watchdog enabled", "interval", interval)
	starving := false
	loop.Every(ctx, interval/3, func(context.Context) {
		if m.server.Healthy() {
			m.notify(daemon.SdNotifyWatchdog)
			starving = false
		} else if !starving {
			m.logger.Error("store unhealthy: not pinging systemd's watchdog", "watchdog", interval)
			starving = true
		}
	})
}
