package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pcnode/pcnode/gpu"
)

// Source is where the monitor's events come from.
type Source interface {
	// Watch watches uuids for health events: it calls started once with the
	// GPUs it could not watch (and why), then emit for each event, until
	// ctx is done (returning nil) or it fails (returning the error). An
	// error returned before started was called means monitoring could not
	// start. A GPU in unwatched whose error wraps gpu.ErrProbe is known to
	// be lost.
	Watch(ctx context.Context, uuids []string, started func(unwatched map[string]error), emit func(gpu.Event)) error
	// Probe returns nil when the GPU responds, or an error saying why not.
	Probe(ctx context.Context, uuid string) error
}

// Config tunes the monitor. Start from DefaultConfig.
type Config struct {
	// AppXIDs are the XIDs caused by applications: recorded, but they do
	// not make a GPU unhealthy. Empty means every XID is critical.
	AppXIDs []int
	// SingleBitECCUnhealthy makes corrected (single-bit) ECC errors
	// critical. By default they are only logged.
	SingleBitECCUnhealthy bool
	// ReprobeInterval is how often unhealthy GPUs are re-probed; 0 turns
	// re-probing off (only Clear recovers a GPU).
	ReprobeInterval time.Duration
	// RecoveryWindow is how long a GPU must have had no critical event
	// before a re-probe may mark it healthy.
	RecoveryWindow time.Duration
	// RestartInterval is how long to wait before starting a failed source
	// again; 0 means never.
	RestartInterval time.Duration
	// Clock is the time source; nil means the wall clock.
	Clock Clock
	// Logger receives health transitions; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults: the application XIDs of
// gpu.DefaultAppXIDs, single-bit ECC errors not critical, re-probe every
// minute, recovery after 5 quiet minutes, restart a failed source after 30
// seconds.
func DefaultConfig() Config {
	return Config{
		AppXIDs:         slices.Clone(gpu.DefaultAppXIDs),
		ReprobeInterval: time.Minute,
		RecoveryWindow:  5 * time.Minute,
		RestartInterval: 30 * time.Second,
	}
}

// Monitor keeps the health of a fixed set of GPUs. Its methods are safe
// for concurrent use.
type Monitor struct {
	src    Source
	cfg    Config
	clock  Clock
	log    *slog.Logger
	appXID map[int]bool
	uuids  []string

	mu      sync.Mutex
	gpus    map[string]*state
	subs    map[*subscriber]struct{}
	running bool
}

type state struct {
	status       gpu.Status
	watched      bool       // the source is watching this GPU now
	lastCritical time.Time  // time of the last critical event
	reason       string     // message of the last critical event
	cause        *gpu.Event // the critical event being published; set by criticalLocked for publishLocked
}

// New returns a monitor of the GPUs uuids, all HealthUnknown until Run
// starts the source. It fails with gpu.ErrInvalidConfig on a negative
// duration or an invalid or repeated UUID.
func New(src Source, uuids []string, cfg Config) (*Monitor, error) {
	if src == nil {
		return nil, fmt.Errorf("%w: health monitor needs a source", gpu.ErrInvalidConfig)
	}
	if cfg.ReprobeInterval < 0 || cfg.RecoveryWindow < 0 || cfg.RestartInterval < 0 {
		return nil, fmt.Errorf("%w: health durations must not be negative", gpu.ErrInvalidConfig)
	}
	m := &Monitor{
		src:    src,
		cfg:    cfg,
		clock:  cfg.Clock,
		log:    cfg.Logger,
		appXID: map[int]bool{},
		uuids:  slices.Clone(uuids),
		gpus:   map[string]*state{},
		subs:   map[*subscriber]struct{}{},
	}
	if m.clock == nil {
		m.clock = realClock{}
	}
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, x := range cfg.AppXIDs {
		m.appXID[x] = true
	}
	for _, u := range uuids {
		if err := gpu.ValidateUUID(u); err != nil {
			return nil, err
		}
		if m.gpus[u] != nil {
			return nil, fmt.Errorf("%w: gpu %q listed twice", gpu.ErrInvalidConfig, u)
		}
		m.gpus[u] = &state{status: gpu.Status{
			UUID:    u,
			Health:  gpu.HealthUnknown,
			Message: "health monitoring has not started",
		}}
	}
	return m, nil
}

// Run starts the source and keeps it running until ctx is done, re-probing
// unhealthy GPUs meanwhile. It returns nil when ctx is done, or an error at
// once if Run is already running.
func (m *Monitor) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.running {
		m.mu.Unlock()
		return errors.New("health monitor is already running")
	}
	m.running = true
	m.mu.Unlock()

	var wg sync.WaitGroup
	if m.cfg.ReprobeInterval > 0 {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-m.clock.After(m.cfg.ReprobeInterval):
					m.Reprobe(ctx)
				}
			}
		})
	}
	for {
		err := m.src.Watch(ctx, m.uuids, m.started, m.Report)
		if ctx.Err() != nil {
			break
		}
		if err == nil {
			err = errors.New("event source stopped")
		}
		m.sourceFailed(err)
		if m.cfg.RestartInterval <= 0 {
			<-ctx.Done()
			break
		}
		select {
		case <-ctx.Done():
		case <-m.clock.After(m.cfg.RestartInterval):
		}
		if ctx.Err() != nil {
			break
		}
	}
	wg.Wait()

	m.mu.Lock()
	defer m.mu.Unlock()
	m.running = false
	for _, u := range m.uuids {
		st := m.gpus[u]
		st.watched = false
		if st.status.Health == gpu.HealthHealthy {
			m.setLocked(st, gpu.HealthUnknown, "health monitor stopped")
		}
	}
	return nil
}

// started is called by the source once it watches the GPUs.
func (m *Monitor) started(unwatched map[string]error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	for _, u := range m.uuids {
		st := m.gpus[u]
		err, bad := unwatched[u]
		st.watched = !bad
		switch {
		case bad && errors.Is(err, gpu.ErrProbe):
			m.criticalLocked(st, fmt.Sprintf("gpu lost: %v", err), gpu.Event{UUID: st.status.UUID, Kind: gpu.EventLost, Time: now})
		case bad:
			if st.status.Health != gpu.HealthUnhealthy {
				m.setLocked(st, gpu.HealthUnknown, fmt.Sprintf("health events unavailable for this gpu: %v", err))
			}
		case st.status.Health == gpu.HealthUnknown:
			m.setLocked(st, gpu.HealthHealthy, "")
		}
	}
	m.log.Info("gpu health monitoring started", "watched", len(m.uuids)-len(unwatched), "unwatched", len(unwatched))
}

// sourceFailed makes healthy GPUs unknown: nothing watches them now.
func (m *Monitor) sourceFailed(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	msg := fmt.Sprintf("health monitoring not running: %v", err)
	if m.cfg.RestartInterval > 0 {
		msg += fmt.Sprintf(" (retrying every %s)", m.cfg.RestartInterval)
	}
	m.log.Warn("gpu health monitoring failed", "error", err)
	for _, u := range m.uuids {
		st := m.gpus[u]
		st.watched = false
		if st.status.Health != gpu.HealthUnhealthy {
			m.setLocked(st, gpu.HealthUnknown, msg)
		}
	}
}

// Report applies a health event as if the source had delivered it. The
// source calls it; so may other components that learn of a GPU failure.
// A zero ev.Time means now. Events for GPUs the monitor does not know are
// logged and dropped.
func (m *Monitor) Report(ev gpu.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ev.Time.IsZero() {
		ev.Time = m.clock.Now()
	}
	var targets []*state
	if ev.UUID == "" {
		for _, u := range m.uuids {
			if m.gpus[u].watched {
				targets = append(targets, m.gpus[u])
			}
		}
	} else if st := m.gpus[ev.UUID]; st != nil {
		targets = append(targets, st)
	} else {
		m.log.Warn("health event for an unknown gpu dropped", "gpu", ev.UUID, "event", ev.Kind.String())
		return
	}
	for _, st := range targets {
		m.applyLocked(st, ev)
	}
}

func (m *Monitor) applyLocked(st *state, ev gpu.Event) {
	switch ev.Kind {
	case gpu.EventXID:
		xid := &gpu.XID{Code: ev.XID, Time: ev.Time, Message: gpu.XIDDescription(ev.XID)}
		st.status.LastXID = xid
		if m.appXID[ev.XID] {
			m.log.Info("application xid on gpu; health unchanged", "gpu", st.status.UUID, "xid", ev.XID)
			m.publishLocked(st.status.Health, st)
			return
		}
		m.criticalLocked(st, xid.Message, ev)
	case gpu.EventDoubleBitECC:
		m.criticalLocked(st, "double-bit (uncorrected) ECC error", ev)
	case gpu.EventSingleBitECC:
		if m.cfg.SingleBitECCUnhealthy {
			m.criticalLocked(st, "single-bit (corrected) ECC error", ev)
			return
		}
		m.log.Info("single-bit ECC error on gpu; health unchanged", "gpu", st.status.UUID)
	case gpu.EventLost:
		// Sources find lost GPUs through started; a caller reports one it
		// knew of (the daemon, from a mark kept across a restart).
		m.criticalLocked(st, "gpu lost", ev)
	default:
		m.log.Warn("unknown health event kind dropped", "gpu", st.status.UUID, "kind", int(ev.Kind))
	}
}

// criticalLocked marks the GPU unhealthy because of ev, publishing one
// change whose Cause is ev (even when the GPU was unhealthy already).
func (m *Monitor) criticalLocked(st *state, what string, ev gpu.Event) {
	t := ev.Time
	st.lastCritical = t
	st.cause = &ev
	defer func() { st.cause = nil }()
	if st.status.Health == gpu.HealthUnhealthy {
		// Already unhealthy: the message changes below (new time), so
		// setLocked publishes; make sure it does even if it would not.
		st.status.Message = ""
	}
	st.reason = fmt.Sprintf("%s at %s", what, t.UTC().Format(time.RFC3339))
	m.log.Warn("gpu unhealthy", "gpu", st.status.UUID, "reason", st.reason)
	m.setLocked(st, gpu.HealthUnhealthy, st.reason)
}

// Reprobe runs one re-probe pass now (Run does so every ReprobeInterval):
// each unhealthy GPU whose last critical event is at least RecoveryWindow
// old is probed, and becomes healthy if the probe succeeds and no critical
// event arrived meanwhile. A recovered GPU that the source is not watching
// becomes unknown rather than healthy.
func (m *Monitor) Reprobe(ctx context.Context) {
	type candidate struct {
		uuid string
		last time.Time
	}
	now := m.clock.Now()
	var cands []candidate
	m.mu.Lock()
	for _, u := range m.uuids {
		st := m.gpus[u]
		if st.status.Health == gpu.HealthUnhealthy && now.Sub(st.lastCritical) >= m.cfg.RecoveryWindow {
			cands = append(cands, candidate{u, st.lastCritical})
		}
	}
	m.mu.Unlock()

	for _, c := range cands {
		err := m.src.Probe(ctx, c.uuid)
		if ctx.Err() != nil {
			return
		}
		m.mu.Lock()
		st := m.gpus[c.uuid]
		switch {
		case st.status.Health != gpu.HealthUnhealthy || !st.lastCritical.Equal(c.last):
			// Cleared, or a new critical event arrived while probing.
		case err != nil:
			m.setLocked(st, gpu.HealthUnhealthy, fmt.Sprintf("%s; re-probe at %s failed: %v",
				st.reason, now.UTC().Format(time.RFC3339), err))
		default:
			m.log.Info("gpu recovered after re-probe", "gpu", c.uuid, "last_critical", c.last)
			m.recoverLocked(st)
		}
		m.mu.Unlock()
	}
}

// recoverLocked makes an unhealthy GPU healthy, or unknown if unwatched.
func (m *Monitor) recoverLocked(st *state) {
	if st.watched {
		m.setLocked(st, gpu.HealthHealthy, "")
		return
	}
	m.setLocked(st, gpu.HealthUnknown, "recovered, but health monitoring is not running for this gpu")
}

// Clear is the admin's override: an unhealthy GPU becomes healthy now (or
// unknown if the source is not watching it); a healthy one is left alone.
// It fails with gpu.ErrUnknownGPU for a GPU the monitor does not know and
// with gpu.ErrNotMonitored for one whose health is unknown.
func (m *Monitor) Clear(uuid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.gpus[uuid]
	if st == nil {
		return fmt.Errorf("%w: %q", gpu.ErrUnknownGPU, uuid)
	}
	switch st.status.Health {
	case gpu.HealthUnknown:
		return fmt.Errorf("%w: %s: %s", gpu.ErrNotMonitored, uuid, st.status.Message)
	case gpu.HealthUnhealthy:
		m.log.Info("gpu health cleared by admin", "gpu", uuid, "was", st.reason)
		m.recoverLocked(st)
	}
	return nil
}

// Status returns the GPU's status, or an error wrapping gpu.ErrUnknownGPU.
func (m *Monitor) Status(uuid string) (gpu.Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.gpus[uuid]
	if st == nil {
		return gpu.Status{}, fmt.Errorf("%w: %q", gpu.ErrUnknownGPU, uuid)
	}
	return cloneStatus(st.status), nil
}

// Statuses returns every GPU's status, in the order given to New.
func (m *Monitor) Statuses() []gpu.Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]gpu.Status, len(m.uuids))
	for i, u := range m.uuids {
		out[i] = cloneStatus(m.gpus[u].status)
	}
	return out
}

// setLocked changes health and message, and publishes the change if any.
func (m *Monitor) setLocked(st *state, h gpu.Health, msg string) {
	prev := st.status.Health
	if prev == h && st.status.Message == msg {
		return
	}
	if prev != h {
		st.status.Since = m.clock.Now()
	}
	st.status.Health, st.status.Message = h, msg
	m.publishLocked(prev, st)
}

func cloneStatus(s gpu.Status) gpu.Status {
	if s.LastXID != nil {
		x := *s.LastXID
		s.LastXID = &x
	}
	return s
}
