package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// flakyContainerd is a versioner that answers or not, as the test says,
// counting the pings.
type flakyContainerd struct {
	mu    sync.Mutex
	down  bool
	pings int
}

func (f *flakyContainerd) Version(ctx context.Context) (runtime.Version, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pings++
	if f.down {
		return runtime.Version{}, fmt.Errorf("%w at /run/test.sock: connection refused", runtime.ErrUnavailable)
	}
	return runtime.Version{Version: "1.6.test"}, nil
}

func (f *flakyContainerd) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *flakyContainerd) pingCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pings
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestContainerdHealthTransitions(t *testing.T) {
	f := &flakyContainerd{}
	h := newContainerdHealth(f, "/run/test.sock", slog.New(slog.DiscardHandler), true, nil, time.Now())
	var mu sync.Mutex
	var changes []bool
	h.onChange = func(up bool) {
		mu.Lock()
		changes = append(changes, up)
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); h.run(ctx) }()
	defer func() { cancel(); <-done }()

	if !h.containerdUp() {
		t.Fatal("containerdUp() = false at the start, want true")
	}
	if err := h.waitContainerd(t.Context()); err != nil {
		t.Fatalf("waitContainerd while up = %v, want nil", err)
	}

	f.setDown(true)
	waitUntil(t, "containerd down", func() bool { return !h.containerdUp() })
	up, lastErr, _, _ := h.state()
	if up || !errors.Is(lastErr, runtime.ErrUnavailable) {
		t.Errorf("state() = up %v, err %v; want down with ErrUnavailable", up, lastErr)
	}
	// waitContainerd blocks while down and ends with its ctx.
	wctx, wcancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	if err := h.waitContainerd(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waitContainerd while down = %v, want DeadlineExceeded", err)
	}
	wcancel()

	// Backoff while down: over 2 s, fewer pings than at one per 250 ms.
	before := f.pingCount()
	time.Sleep(2 * time.Second)
	if n := f.pingCount() - before; n < 1 || n > 6 {
		t.Errorf("%d pings in 2 s while down, want a backoff (1 to 6)", n)
	}

	released := make(chan error, 1)
	go func() { released <- h.waitContainerd(t.Context()) }()
	f.setDown(false)
	select {
	case err := <-released:
		if err != nil {
			t.Errorf("waitContainerd when back = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waitContainerd did not return within 10 s of containerd being back")
	}
	if _, _, _, v := h.state(); v.Version != "1.6.test" {
		t.Errorf("version = %q, want 1.6.test", v.Version)
	}
	if got := h.outageCount(); got != 1 {
		t.Errorf("outageCount() = %d, want 1", got)
	}
	// onChange is called after the waiters are woken: wait for it.
	waitUntil(t, "onChange told of the return", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(changes) >= 2
	})
	mu.Lock()
	got := fmt.Sprint(changes)
	mu.Unlock()
	if got != "[false true]" {
		t.Errorf("onChange calls = %s, want [false true] (once per transition)", got)
	}
}

func TestContainerdHealthDownReported(t *testing.T) {
	f := &flakyContainerd{}
	h := newContainerdHealth(f, "/run/test.sock", slog.New(slog.DiscardHandler), true, nil, time.Now())
	h.down(errors.New("some other failure"))
	if !h.containerdUp() {
		t.Fatal("down(non-ErrUnavailable) turned the state down")
	}
	h.down(fmt.Errorf("wait: %w", runtime.ErrUnavailable))
	if h.containerdUp() {
		t.Fatal("down(ErrUnavailable) left the state up")
	}
	// The monitor pings at once on a report and finds containerd up.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); h.run(ctx) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, "containerd up again", h.containerdUp)
}

func TestContainerdHealthStartsDown(t *testing.T) {
	f := &flakyContainerd{down: true}
	h := newContainerdHealth(f, "/run/test.sock", slog.New(slog.DiscardHandler), false, errors.New("refused"), time.Now())
	if h.containerdUp() || h.outageCount() != 1 {
		t.Fatalf("started down: up %v, outages %d; want down, 1", h.containerdUp(), h.outageCount())
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); h.run(ctx) }()
	defer func() { cancel(); <-done }()
	f.setDown(false)
	waitUntil(t, "containerd up", h.containerdUp)
}

// TestNodeConditions: both types always present, ok by default; a change
// is reported once and keeps its since-time when only the message changes.
func TestNodeConditions(t *testing.T) {
	start := time.Unix(1000, 0)
	c := newNodeConditions(start)
	got := c.list()
	if len(got) != 2 || got[0].GetType() != pcnodev1.NodeConditionType_NODE_CONDITION_TYPE_CONTAINERD_READY ||
		got[1].GetType() != pcnodev1.NodeConditionType_NODE_CONDITION_TYPE_GPUS_KNOWN {
		t.Fatalf("list() = %v, want CONTAINERD_READY and GPUS_KNOWN", got)
	}
	for _, x := range got {
		if !x.GetOk() || !x.GetSince().AsTime().Equal(start) {
			t.Errorf("default %v = ok %v since %v, want ok since the start", x.GetType(), x.GetOk(), x.GetSince().AsTime())
		}
	}
	typ := pcnodev1.NodeConditionType_NODE_CONDITION_TYPE_CONTAINERD_READY
	t1 := time.Unix(2000, 0)
	if !c.set(typ, false, "refused", t1) {
		t.Error("set(down) = false, want a change")
	}
	if c.set(typ, false, "refused", time.Unix(3000, 0)) {
		t.Error("set(same) = true, want no change")
	}
	if !c.set(typ, false, "reset", time.Unix(4000, 0)) {
		t.Error("set(new message) = false, want a change")
	}
	x := c.list()[0]
	if x.GetOk() || x.GetMessage() != "reset" || !x.GetSince().AsTime().Equal(t1) {
		t.Errorf("condition = %v, want down, message reset, since %v", x, t1)
	}
}

// TestUnavailableCode: containerd being unreachable is UNAVAILABLE with
// its message, not INTERNAL.
func TestUnavailableCode(t *testing.T) {
	err := fmt.Errorf("image x: %w", fmt.Errorf("%w at /run/c.sock: rpc error", runtime.ErrUnavailable))
	st, _ := status.FromError(toStatus(err))
	if st.Code() != codes.Unavailable {
		t.Errorf("toStatus(%v) code = %v, want Unavailable", err, st.Code())
	}
	if st.Message() != err.Error() {
		t.Errorf("toStatus(%v) message = %q, want the error's", err, st.Message())
	}
}

// waitScript is a runtime whose Wait answers from a script, one entry per
// call (the last one thereafter), recording when each call came.
type waitScript struct {
	containerRuntime
	mu      sync.Mutex
	results []waitResult
	calls   []time.Time
}

type waitResult struct {
	exit runtime.ExitStatus
	err  error
}

func (w *waitScript) Wait(ctx context.Context, id string) (runtime.ExitStatus, error) {
	w.mu.Lock()
	w.calls = append(w.calls, time.Now())
	res := w.results[min(len(w.calls), len(w.results))-1]
	w.mu.Unlock()
	return res.exit, res.err
}

func (w *waitScript) Usage(context.Context, string) (runtime.Usage, error) {
	return runtime.Usage{}, fmt.Errorf("%w: down", runtime.ErrUnavailable)
}

func (w *waitScript) callTimes() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.calls...)
}

// TestSuperviseWaitsForContainerd: a Wait that fails with ErrUnavailable is
// not the task's end: supervise waits until containerd answers and waits
// again, returning what that Wait says (the exit status, or ErrNotFound
// when the container is gone, which makes the task LOST).
func TestSuperviseWaitsForContainerd(t *testing.T) {
	unavailable := fmt.Errorf("wait for t1: %w", runtime.ErrUnavailable)
	for _, tt := range []struct {
		name    string
		second  waitResult
		wantErr error
	}{
		{"exited meanwhile", waitResult{exit: runtime.ExitStatus{Code: 3}}, nil},
		{"container gone", waitResult{err: fmt.Errorf("container t1: %w", runtime.ErrNotFound)}, runtime.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &flakyContainerd{down: true}
			h := newContainerdHealth(f, "/run/test.sock", slog.New(slog.DiscardHandler), true, nil, time.Now())
			rt := &waitScript{results: []waitResult{{err: unavailable}, tt.second}}
			d := &Daemon{log: slog.New(slog.DiscardHandler), rt: rt, gpus: &gpuNode{}, ctrd: h}
			r := d.newRunner("t1", sched.Assignment{ID: "t1"}, nil)
			defer r.cancel()

			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { defer close(done); h.run(ctx) }()
			defer func() { cancel(); <-done }()

			type out struct {
				exit runtime.ExitStatus
				err  error
			}
			res := make(chan out, 1)
			go func() {
				exit, err := r.supervise(&pcnodev1.Task{Id: "t1"})
				res <- out{exit, err}
			}()
			waitUntil(t, "containerd marked down", func() bool { return !h.containerdUp() })
			time.Sleep(500 * time.Millisecond)
			if n := len(rt.callTimes()); n != 1 {
				t.Fatalf("Wait called %d times while containerd is down, want once", n)
			}
			back := time.Now()
			f.setDown(false)
			var got out
			select {
			case got = <-res:
			case <-time.After(10 * time.Second):
				t.Fatal("supervise did not return within 10 s of containerd being back")
			}
			calls := rt.callTimes()
			if len(calls) != 2 || calls[1].Before(back) {
				t.Errorf("Wait calls at %v, want two, the second after containerd was back (%v)", calls, back)
			}
			if tt.wantErr != nil {
				if !errors.Is(got.err, tt.wantErr) {
					t.Errorf("supervise = %v, want %v", got.err, tt.wantErr)
				}
				return
			}
			if got.err != nil || got.exit.Code != 3 {
				t.Errorf("supervise = %+v, %v; want exit 3", got.exit, got.err)
			}
		})
	}
}

// TestScheduleLoopGatedOnContainerd: while containerd is down the schedule
// loop admits nothing, however often it is kicked; when the monitor finds
// containerd back it kicks the loop, which admits the queued task.
func TestScheduleLoopGatedOnContainerd(t *testing.T) {
	s, err := sched.New(sched.Config{Allocatable: sched.Resources{MilliCPU: 4000, MemoryBytes: 4 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyContainerd{down: true}
	h := newContainerdHealth(f, "/run/test.sock", slog.New(slog.DiscardHandler), false, errors.New("refused"), time.Now())
	d := &Daemon{log: slog.New(slog.DiscardHandler), sched: s, ctrd: h, node: newNodeWatch(), conds: newNodeConditions(time.Now()),
		wake: make(chan struct{}, 1),
		// closing: launch admits in the scheduler but starts no runner
		taskTable: taskTable{queued: map[string]*queuedTask{"t1": {}}, runners: map[string]*runner{}, closing: true}}
	h.onChange = d.containerdChanged
	d.conds.set(pcnodev1.NodeConditionType_NODE_CONDITION_TYPE_CONTAINERD_READY, false, "refused", time.Now()) // as New does
	if err := s.Enqueue(sched.Request{ID: "t1", Requests: sched.Resources{MilliCPU: 100, MemoryBytes: 1 << 20}, Submitted: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.scheduleLoop(ctx) }()
	go func() { defer wg.Done(); h.run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	for range 5 {
		d.kick()
		time.Sleep(50 * time.Millisecond)
	}
	if snap := s.Snapshot(); snap.Queued != 1 || snap.Running != 0 {
		t.Fatalf("with containerd down: %d queued, %d running; want the task still queued", snap.Queued, snap.Running)
	}
	if c := d.conds.list()[0]; c.GetOk() {
		t.Errorf("CONTAINERD_READY = %v while down, want ok=false", c)
	}
	f.setDown(false)
	waitUntil(t, "the queued task admitted once containerd is back", func() bool { return s.Snapshot().Running == 1 })
	if c := d.conds.list()[0]; !c.GetOk() || c.GetMessage() != "" {
		t.Errorf("CONTAINERD_READY = %v once back, want ok=true without a message", c)
	}
}
