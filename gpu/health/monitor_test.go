package health_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pcnode/pcnode/gpu"
	"github.com/pcnode/pcnode/gpu/gputest"
	"github.com/pcnode/pcnode/gpu/health"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeSource is a hand-written Source for the monitor's pure logic: it
// watches what it is told to, and its probes answer from a map.
type fakeSource struct {
	mu        sync.Mutex
	unwatched map[string]error
	startErr  error
	probeErr  map[string]error
	onProbe   func(uuid string)
	probed    []string
	emit      func(gpu.Event)
	ready     chan struct{}
}

func newFakeSource() *fakeSource {
	return &fakeSource{probeErr: map[string]error{}, ready: make(chan struct{})}
}

func (s *fakeSource) Watch(ctx context.Context, _ []string, started func(map[string]error), emit func(gpu.Event)) error {
	s.mu.Lock()
	if s.startErr != nil {
		err := s.startErr
		s.mu.Unlock()
		return err
	}
	s.emit = emit
	unwatched := s.unwatched
	s.mu.Unlock()
	started(unwatched)
	close(s.ready)
	<-ctx.Done()
	return nil
}

func (s *fakeSource) Probe(_ context.Context, uuid string) error {
	s.mu.Lock()
	s.probed = append(s.probed, uuid)
	hook, err := s.onProbe, s.probeErr[uuid]
	s.mu.Unlock()
	if hook != nil {
		hook(uuid)
	}
	return err
}

func (s *fakeSource) probes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.probed...)
}

var uuids = []string{"GPU-a", "GPU-b", "GPU-c"}

// start runs a monitor over src until the test ends and waits until the
// source has started (when it is to start).
func start(t *testing.T, src *fakeSource, tune func(*health.Config)) (*health.Monitor, *gputest.FakeClock) {
	t.Helper()
	clock := gputest.NewFakeClock(t0)
	cfg := health.DefaultConfig()
	cfg.Clock = clock
	cfg.ReprobeInterval = 0 // Reprobe is called by hand
	if tune != nil {
		tune(&cfg)
	}
	m, err := health.New(src, uuids, cfg)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if src.startErr == nil {
		select {
		case <-src.ready:
		case <-time.After(10 * time.Second):
			t.Fatal("source not started")
		}
	}
	return m, clock
}

func healths(m *health.Monitor) []gpu.Health {
	var out []gpu.Health
	for _, s := range m.Statuses() {
		out = append(out, s.Health)
	}
	return out
}

func TestNewInvalid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		src   health.Source
		uuids []string
		cfg   health.Config
	}{
		{"nil source", nil, uuids, health.DefaultConfig()},
		{"bad uuid", health.StaticSource{}, []string{"GPU a"}, health.DefaultConfig()},
		{"duplicate uuid", health.StaticSource{}, []string{"GPU-a", "GPU-a"}, health.DefaultConfig()},
		{"negative interval", health.StaticSource{}, uuids, health.Config{ReprobeInterval: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := health.New(tc.src, tc.uuids, tc.cfg); !errors.Is(err, gpu.ErrInvalidConfig) {
				t.Errorf("New(%v) = %v, want %v", tc.uuids, err, gpu.ErrInvalidConfig)
			}
		})
	}
}

func TestUnknownBeforeRun(t *testing.T) {
	m, err := health.New(health.StaticSource{}, uuids, health.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Statuses() {
		if s.Health != gpu.HealthUnknown || s.Message == "" {
			t.Errorf("GPU %s before Run = %v %q, want unknown with a reason", s.UUID, s.Health, s.Message)
		}
	}
	if _, err := m.Status("GPU-z"); !errors.Is(err, gpu.ErrUnknownGPU) {
		t.Errorf("Status(unknown) = %v, want %v", err, gpu.ErrUnknownGPU)
	}
}

func TestEvents(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tune   func(*health.Config)
		events []gpu.Event
		want   []gpu.Health
	}{
		{"xid 79", nil, []gpu.Event{{UUID: "GPU-b", Kind: gpu.EventXID, XID: 79}},
			[]gpu.Health{gpu.HealthHealthy, gpu.HealthUnhealthy, gpu.HealthHealthy}},
		{"xid 13 is the application's", nil, []gpu.Event{{UUID: "GPU-b", Kind: gpu.EventXID, XID: 13}},
			[]gpu.Health{gpu.HealthHealthy, gpu.HealthHealthy, gpu.HealthHealthy}},
		{"xid 13 critical when no app xids", func(c *health.Config) { c.AppXIDs = nil },
			[]gpu.Event{{UUID: "GPU-b", Kind: gpu.EventXID, XID: 13}},
			[]gpu.Health{gpu.HealthHealthy, gpu.HealthUnhealthy, gpu.HealthHealthy}},
		{"custom app xid", func(c *health.Config) { c.AppXIDs = []int{79} },
			[]gpu.Event{{UUID: "GPU-b", Kind: gpu.EventXID, XID: 79}},
			[]gpu.Health{gpu.HealthHealthy, gpu.HealthHealthy, gpu.HealthHealthy}},
		{"double-bit ecc", nil, []gpu.Event{{UUID: "GPU-c", Kind: gpu.EventDoubleBitECC}},
			[]gpu.Health{gpu.HealthHealthy, gpu.HealthHealthy, gpu.HealthUnhealthy}},
		{"single-bit ecc", nil, []gpu.Event{{UUID: "GPU-c", Kind: gpu.EventSingleBitECC}},
			[]gpu.Health{gpu.HealthHealthy, gpu.HealthHealthy, gpu.HealthHealthy}},
		{"single-bit ecc made critical", func(c *health.Config) { c.SingleBitECCUnhealthy = true },
			[]gpu.Event{{UUID: "GPU-c", Kind: gpu.EventSingleBitECC}},
			[]gpu.Health{gpu.HealthHealthy, gpu.HealthHealthy, gpu.HealthUnhealthy}},
		{"event without gpu", nil, []gpu.Event{{Kind: gpu.EventXID, XID: 79}},
			[]gpu.Health{gpu.HealthUnhealthy, gpu.HealthUnhealthy, gpu.HealthUnhealthy}},
		{"event for another gpu", nil, []gpu.Event{{UUID: "GPU-z", Kind: gpu.EventXID, XID: 79}},
			[]gpu.Health{gpu.HealthHealthy, gpu.HealthHealthy, gpu.HealthHealthy}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeSource()
			m, _ := start(t, src, tc.tune)
			for _, ev := range tc.events {
				src.emit(ev)
			}
			if diff := cmp.Diff(tc.want, healths(m)); diff != "" {
				t.Errorf("health after %+v (-want +got):\n%s", tc.events, diff)
			}
		})
	}
}

func TestReprobeWindow(t *testing.T) {
	src := newFakeSource()
	m, clock := start(t, src, func(c *health.Config) { c.RecoveryWindow = 5 * time.Minute })
	src.emit(gpu.Event{UUID: "GPU-a", Kind: gpu.EventXID, XID: 79})
	clock.Advance(3 * time.Minute)
	src.emit(gpu.Event{UUID: "GPU-a", Kind: gpu.EventDoubleBitECC}) // restarts the window

	clock.Advance(4 * time.Minute) // 7 min after the XID, 4 after the ECC error
	m.Reprobe(context.Background())
	if got := src.probes(); len(got) != 0 {
		t.Fatalf("probed %v within the window of the last critical event", got)
	}
	clock.Advance(time.Minute)
	m.Reprobe(context.Background())
	if diff := cmp.Diff([]string{"GPU-a"}, src.probes()); diff != "" {
		t.Errorf("probes (-want +got):\n%s", diff)
	}
	if s, _ := m.Status("GPU-a"); s.Health != gpu.HealthHealthy || !s.Since.Equal(t0.Add(8*time.Minute)) {
		t.Errorf("GPU-a after a quiet window = %v since %v, want healthy since %v", s.Health, s.Since, t0.Add(8*time.Minute))
	}
}

func TestReprobeLosesToNewEvent(t *testing.T) {
	src := newFakeSource()
	m, clock := start(t, src, func(c *health.Config) { c.RecoveryWindow = time.Minute })
	src.emit(gpu.Event{UUID: "GPU-b", Kind: gpu.EventXID, XID: 79})
	clock.Advance(time.Minute)
	src.onProbe = func(string) { // a new XID arrives while the probe runs
		src.emit(gpu.Event{UUID: "GPU-b", Kind: gpu.EventXID, XID: 94})
	}
	m.Reprobe(context.Background())
	s, _ := m.Status("GPU-b")
	if s.Health != gpu.HealthUnhealthy || s.LastXID.Code != 94 {
		t.Errorf("GPU-b after an XID during its probe = %v (last XID %+v), want unhealthy with XID 94", s.Health, s.LastXID)
	}
}

func TestReprobeFailure(t *testing.T) {
	src := newFakeSource()
	src.probeErr["GPU-c"] = errors.New("gpu is lost")
	m, clock := start(t, src, func(c *health.Config) { c.RecoveryWindow = 0 })
	src.emit(gpu.Event{UUID: "GPU-c", Kind: gpu.EventDoubleBitECC})
	clock.Advance(time.Second)
	m.Reprobe(context.Background())
	m.Reprobe(context.Background())
	s, _ := m.Status("GPU-c")
	if s.Health != gpu.HealthUnhealthy || strings.Count(s.Message, "re-probe") != 1 || !strings.Contains(s.Message, "gpu is lost") {
		t.Errorf("GPU-c after failing re-probes = %v %q, want unhealthy with one re-probe failure named", s.Health, s.Message)
	}
}

func TestUnwatchedGPUs(t *testing.T) {
	src := newFakeSource()
	src.unwatched = map[string]error{
		"GPU-a": errors.New("no xid events"),
		"GPU-b": lostErr(gpu.ErrProbe),
	}
	m, _ := start(t, src, nil)
	if diff := cmp.Diff([]gpu.Health{gpu.HealthUnknown, gpu.HealthUnhealthy, gpu.HealthHealthy}, healths(m)); diff != "" {
		t.Errorf("health with GPU-a unwatchable and GPU-b lost (-want +got):\n%s", diff)
	}
	if err := m.Clear("GPU-a"); !errors.Is(err, gpu.ErrNotMonitored) {
		t.Errorf("Clear(unwatched) = %v, want %v", err, gpu.ErrNotMonitored)
	}
	// Clearing a lost, unwatched GPU cannot vouch for it: unknown, not healthy.
	if err := m.Clear("GPU-b"); err != nil {
		t.Fatalf("Clear(GPU-b) = %v", err)
	}
	if s, _ := m.Status("GPU-b"); s.Health != gpu.HealthUnknown {
		t.Errorf("GPU-b cleared while unwatched = %v, want unknown", s.Health)
	}
}

func lostErr(err error) error { return errors.Join(err, errors.New("handle: GPU is lost")) }

func TestClearHealthyIsNoop(t *testing.T) {
	src := newFakeSource()
	m, _ := start(t, src, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := m.Subscribe(ctx)
	if err := m.Clear("GPU-a"); err != nil {
		t.Fatalf("Clear(healthy) = %v", err)
	}
	src.emit(gpu.Event{UUID: "GPU-c", Kind: gpu.EventDoubleBitECC})
	if c := <-sub; c.Status.UUID != "GPU-c" {
		t.Errorf("first change after clearing a healthy GPU = %+v, want GPU-c's (clear changed nothing)", c)
	}
}

func TestSubscribeOrderAndClose(t *testing.T) {
	src := newFakeSource()
	m, _ := start(t, src, nil)
	ctx, cancel := context.WithCancel(context.Background())
	sub := m.Subscribe(ctx)
	for _, x := range []int{13, 31, 79, 43} {
		src.emit(gpu.Event{UUID: "GPU-a", Kind: gpu.EventXID, XID: x})
	}
	var got []int
	for range 4 {
		got = append(got, (<-sub).Status.LastXID.Code)
	}
	if diff := cmp.Diff([]int{13, 31, 79, 43}, got); diff != "" {
		t.Errorf("changes out of order (-want +got):\n%s", diff)
	}
	cancel()
	for range sub { // drains and ends: the channel is closed
	}
}

func TestRunTwice(t *testing.T) {
	src := newFakeSource()
	m, _ := start(t, src, nil)
	if err := m.Run(context.Background()); err == nil {
		t.Error("second concurrent Run = nil, want an error")
	}
}

func TestStaticSource(t *testing.T) {
	m, err := health.New(health.StaticSource{}, uuids, health.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sub := m.Subscribe(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	for range uuids {
		if c := <-sub; c.Status.Health != gpu.HealthHealthy {
			t.Errorf("static GPU %s = %v, want healthy", c.Status.UUID, c.Status.Health)
		}
	}
	m.Report(gpu.Event{UUID: "GPU-a", Kind: gpu.EventXID, XID: 79})
	if s, _ := m.Status("GPU-a"); s.Health != gpu.HealthUnhealthy {
		t.Errorf("static GPU after a reported XID 79 = %v, want unhealthy", s.Health)
	}
	cancel()
	<-done
}
