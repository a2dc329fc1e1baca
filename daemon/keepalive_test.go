package daemon

import (
	"testing"
	"time"

	"github.com/pcnode/pcnode/client"
)

// TestKeepaliveAcceptsClientPings: the daemon's keepalive policy lets the Go
// client ping at its default rate, with or without an open call, so that a
// scheduler's idle watch is never closed with "too_many_pings"; it still
// names a floor (gRPC replaces a zero MinTime with its 5-minute default),
// and its own pings notice a vanished peer without closing connections for
// their age or idleness.
func TestKeepaliveAcceptsClientPings(t *testing.T) {
	p := keepalivePolicy
	if p.MinTime <= 0 || p.MinTime > client.DefaultKeepaliveTime {
		t.Errorf("keepalivePolicy.MinTime = %v, want in (0, client.DefaultKeepaliveTime = %v]", p.MinTime, client.DefaultKeepaliveTime)
	}
	if p.MinTime < 5*time.Second {
		t.Errorf("keepalivePolicy.MinTime = %v, want at least 5s: a client pinging faster is flooding", p.MinTime)
	}
	if !p.PermitWithoutStream {
		t.Errorf("keepalivePolicy.PermitWithoutStream = false, want true: a scheduler's connection between calls may ping")
	}

	s := keepaliveParams
	if s.Time < p.MinTime || s.Time > 5*time.Minute {
		t.Errorf("keepaliveParams.Time = %v, want between the clients' floor %v and 5m", s.Time, p.MinTime)
	}
	if s.Timeout <= 0 || s.Timeout > s.Time {
		t.Errorf("keepaliveParams.Timeout = %v, want in (0, Time = %v]", s.Timeout, s.Time)
	}
	if s.MaxConnectionIdle != 0 || s.MaxConnectionAge != 0 {
		t.Errorf("keepaliveParams closes connections when idle (%v) or old (%v); want neither (0: never)", s.MaxConnectionIdle, s.MaxConnectionAge)
	}
}
