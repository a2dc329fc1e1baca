package daemon

import (
	"context"
	"log/slog"
	"testing"

	"google.golang.org/grpc"

	"github.com/pcnode/pcnode/daemon/config"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// What the external tests of this package (package daemon_test, which may
// import daemon/server) need of its insides.

// NewWatchDaemonForTest is a Daemon with what WatchTasks and state changes
// need: a memory store keeping history changes, the broker and the node
// watch.
func NewWatchDaemonForTest(t *testing.T, history int) *Daemon {
	t.Helper()
	m, err := store.NewMemoryHistory(history)
	if err != nil {
		t.Fatal(err)
	}
	return &Daemon{cfg: config.DefaultConfig(), log: slog.New(slog.DiscardHandler), store: m, events: newBroker(), node: newNodeWatch()}
}

// CreateTaskForTest stores task and announces it, as submit does.
func (d *Daemon) CreateTaskForTest(ctx context.Context, task *pcnodev1.Task) (*pcnodev1.Task, error) {
	got, _, err := d.store.CreateTask(ctx, task, "", nil)
	if err != nil {
		return nil, err
	}
	d.announce(got)
	return got, nil
}

// UpdateForTest is update: a state change written, then announced.
func (d *Daemon) UpdateForTest(ctx context.Context, id string, fn func(*pcnodev1.Task)) (*pcnodev1.Task, error) {
	return d.update(ctx, id, fn)
}

// SubscribersForTest is how many subscribe to the task events now.
func (d *Daemon) SubscribersForTest() int {
	d.events.mu.Lock()
	defer d.events.mu.Unlock()
	return len(d.events.subs)
}

// StreamErrorsForTest is the stream interceptor that maps errors to status.
func (d *Daemon) StreamErrorsForTest() grpc.StreamServerInterceptor { return d.streamErrors }

// ToStatusForTest is the error mapper (toStatus).
func ToStatusForTest(err error) error { return toStatus(err) }
