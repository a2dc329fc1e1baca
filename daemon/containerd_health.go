package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/pcnode/pcnode/daemon/runtime"
)

// Timing of the containerd health monitor.
const (
	// containerdPingInterval is how often containerd is pinged while up.
	containerdPingInterval = time.Second
	// containerdPingTimeout bounds one ping.
	containerdPingTimeout = 2 * time.Second
	// containerdRetryMin and containerdRetryMax bound the backoff between
	// pings while containerd is down (doubling from min to max).
	containerdRetryMin = 250 * time.Millisecond
	containerdRetryMax = 3 * time.Second
)

// versioner is what the monitor needs of the runtime.
type versioner interface {
	Version(ctx context.Context) (runtime.Version, error)
}

// containerdHealth knows whether containerd answers. A monitor (run) pings
// it (Version) every second while it is up and with a backoff while it is
// down; callers that meet runtime.ErrUnavailable report it (down), so the
// state turns at once rather than at the next ping. Each change of state is
// logged once (warn when down, info when up) and given to onChange.
//
// It also keeps what a metric needs: the number of outages seen since the
// start and the current state with its since-time (outages, state),
// exported as pcnode_containerd_up and pcnode_containerd_outages_total
// (metrics_source.go).
type containerdHealth struct {
	rt       versioner
	address  string
	log      *slog.Logger
	onChange func(up bool) // called without mu held, in order of changes

	poke chan struct{} // asks the monitor to ping now

	notifyMu sync.Mutex // orders onChange calls
	mu       sync.Mutex
	up       bool
	lastErr  error
	since    time.Time
	version  runtime.Version
	outages  uint64
	upCh     chan struct{} // closed while up; a fresh open one while down
}

// newContainerdHealth returns a monitor in state up or down as given (the
// daemon's first ping decides), since start.
func newContainerdHealth(rt versioner, address string, log *slog.Logger, up bool, lastErr error, start time.Time) *containerdHealth {
	h := &containerdHealth{rt: rt, address: address, log: log, up: up, lastErr: lastErr, since: start,
		upCh: make(chan struct{}), poke: make(chan struct{}, 1)}
	if up {
		close(h.upCh)
	} else {
		h.outages = 1
	}
	return h
}

// The methods below work on a nil *containerdHealth (a Daemon built by a
// unit test without one): containerd counts as up.

// containerdUp reports whether containerd answered the last ping (and no
// call since found it unreachable).
func (h *containerdHealth) containerdUp() bool {
	if h == nil {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.up
}

// state returns whether containerd is up, the last error while down, since
// when the state holds, and the last version containerd reported.
func (h *containerdHealth) state() (up bool, lastErr error, since time.Time, v runtime.Version) {
	if h == nil {
		return true, nil, time.Time{}, runtime.Version{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.up, h.lastErr, h.since, h.version
}

// outageCount is how many times containerd went down since the start (a
// start while it was down counts as one).
func (h *containerdHealth) outageCount() uint64 {
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.outages
}

// waitContainerd returns nil as soon as containerd is up, or ctx's error.
func (h *containerdHealth) waitContainerd(ctx context.Context) error {
	if h == nil {
		return ctx.Err()
	}
	for {
		h.mu.Lock()
		up, ch := h.up, h.upCh
		h.mu.Unlock()
		if up {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// down records that a call found containerd unreachable (err wraps
// runtime.ErrUnavailable; other errors are ignored) and has the monitor
// ping again soon.
func (h *containerdHealth) down(err error) {
	if h == nil || !errors.Is(err, runtime.ErrUnavailable) {
		return
	}
	h.set(false, err, runtime.Version{})
	select {
	case h.poke <- struct{}{}:
	default:
	}
}

// set records a ping's outcome, logging and notifying a change of state.
func (h *containerdHealth) set(up bool, err error, v runtime.Version) {
	h.notifyMu.Lock()
	defer h.notifyMu.Unlock()
	h.mu.Lock()
	changed := up != h.up
	h.up = up
	if up {
		h.lastErr = nil
		h.version = v
	} else {
		h.lastErr = err
	}
	if changed {
		h.since = time.Now()
		if up {
			close(h.upCh)
		} else {
			h.upCh = make(chan struct{})
			h.outages++
		}
	}
	since := h.since
	h.mu.Unlock()
	if !changed {
		return
	}
	if up {
		h.log.Info("containerd is reachable again: admitting tasks", "address", h.address, "version", v.Version)
	} else {
		h.log.Warn("containerd is unreachable: admitting no task until it is back; running tasks are kept", "address", h.address, "err", err, "since", since)
	}
	if h.onChange != nil {
		h.onChange(up)
	}
}

// ping asks containerd for its version once and records the outcome. An
// error that is not ErrUnavailable (containerd answered, with an error)
// still means it is up.
func (h *containerdHealth) ping(ctx context.Context) bool {
	pctx, cancel := context.WithTimeout(ctx, containerdPingTimeout)
	defer cancel()
	v, err := h.rt.Version(pctx)
	if ctx.Err() != nil {
		return h.containerdUp()
	}
	up := err == nil || !(errors.Is(err, runtime.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded))
	h.set(up, err, v)
	return up
}

// run pings containerd until ctx ends: every containerdPingInterval while
// it is up, with a backoff from containerdRetryMin to containerdRetryMax
// while it is down, and at once when down is reported.
func (h *containerdHealth) run(ctx context.Context) {
	var backoff time.Duration // 0 while up
	delay := containerdPingInterval
	if !h.containerdUp() {
		backoff = containerdRetryMin
		delay = backoff
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-h.poke:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		switch {
		case h.ping(ctx):
			backoff, delay = 0, containerdPingInterval
		case backoff == 0:
			backoff, delay = containerdRetryMin, containerdRetryMin
		default:
			backoff = min(2*backoff, containerdRetryMax)
			delay = backoff
		}
		timer.Reset(delay)
	}
}
