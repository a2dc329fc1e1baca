package daemon_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/pcnode/pcnode/daemon"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/server"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// serveTasks serves d's TaskService on a unix socket, errors converted as
// pcnoded converts them, and returns a client.
func serveTasks(t *testing.T, d *daemon.Daemon) pcnodev1.TaskServiceClient {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ChainStreamInterceptor(d.StreamErrorsForTest()))
	server.Register(srv, d)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pcnodev1.NewTaskServiceClient(conn)
}

// lifeOf is the states every test task goes through.
var lifeOf = []pcnodev1.TaskState{
	pcnodev1.TaskState_TASK_STATE_QUEUED, pcnodev1.TaskState_TASK_STATE_PREPARING,
	pcnodev1.TaskState_TASK_STATE_RUNNING, pcnodev1.TaskState_TASK_STATE_SUCCEEDED,
}

// runTask creates a task and moves it through lifeOf as the daemon does:
// store write, then announcement.
func runTask(ctx context.Context, d *daemon.Daemon, labels map[string]string) error {
	task := &pcnodev1.Task{Id: store.NewID(time.Now()), State: lifeOf[0], Spec: &pcnodev1.TaskSpec{Labels: labels}}
	got, err := d.CreateTaskForTest(ctx, task)
	if err != nil {
		return err
	}
	for _, st := range lifeOf[1:] {
		if _, err := d.UpdateForTest(ctx, got.GetId(), func(t *pcnodev1.Task) { t.State = st }); err != nil {
			return err
		}
	}
	return nil
}

// watchedEvent is what a watcher saw of one event.
type watchedEvent struct {
	rev   uint64
	id    string
	state pcnodev1.TaskState
}

// recvN receives n events from w.
func recvN(t *testing.T, w pcnodev1.TaskService_WatchTasksClient, n int) []watchedEvent {
	t.Helper()
	var out []watchedEvent
	for len(out) < n {
		resp, err := w.Recv()
		if err != nil {
			t.Fatalf("Recv() after %d of %d events = %v", len(out), n, err)
		}
		ev := resp.GetEvent()
		out = append(out, watchedEvent{ev.GetRevision(), ev.GetTaskId(), ev.GetStateChange().GetState()})
	}
	return out
}

// A watch dropped mid-way and resumed from the last revision it got, while
// tasks change state concurrently, sees together with what it saw before
// exactly what a watch that never dropped sees: every change once, in
// revision order, each task's states in order.
func TestWatchResumeWhileChanging(t *testing.T) {
	d := daemon.NewWatchDaemonForTest(t, store.DefaultHistory)
	c := serveTasks(t, d)
	ctx := t.Context()
	whole, err := c.WatchTasks(ctx, &pcnodev1.WatchTasksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := whole.Header(); err != nil {
		t.Fatal(err)
	}
	// The second watcher is live before the writers start, drops after a
	// few events, and resumes while they run.
	dctx, drop := context.WithCancel(ctx)
	first, err := c.WatchTasks(dctx, &pcnodev1.WatchTasksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Header(); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 10
	total := writers * each * len(lifeOf)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				if err := runTask(ctx, d, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	before := recvN(t, first, 25)
	drop()
	resumed, err := c.WatchTasks(ctx, &pcnodev1.WatchTasksRequest{AfterRevision: before[len(before)-1].rev})
	if err != nil {
		t.Fatal(err)
	}
	want := recvN(t, whole, total)
	wg.Wait()
	// Everything the second watcher can still get: up to the newest.
	var after []watchedEvent
	for len(after) == 0 || after[len(after)-1].rev < want[len(want)-1].rev {
		after = append(after, recvN(t, resumed, 1)...)
	}
	for i, ev := range want {
		if ev.rev != uint64(i+1) {
			t.Fatalf("unbroken watcher: event %d has revision %d, want %d", i, ev.rev, i+1)
		}
	}
	got := append(before, after...)
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("dropped and resumed watcher saw:\n%v\nwant\n%v", got, want)
	}
	next := map[string]int{}
	for _, ev := range want {
		if ev.state != lifeOf[next[ev.id]] {
			t.Errorf("revision %d: task %s is %v, want %v next", ev.rev, ev.id, ev.state, lifeOf[next[ev.id]])
		}
		next[ev.id]++
	}
}

// Resuming from a revision the history no longer keeps is OUT_OF_RANGE with
// REVISION_COMPACTED and the oldest kept; from one not yet written,
// INVALID_ARGUMENT on after_revision; from the newest, nothing until the
// next change.
func TestWatchResumeBounds(t *testing.T) {
	d := daemon.NewWatchDaemonForTest(t, store.MinHistory)
	c := serveTasks(t, d)
	ctx := t.Context()
	for range 30 { // 120 changes: 1 to 20 are pruned
		if err := runTask(ctx, d, nil); err != nil {
			t.Fatal(err)
		}
	}
	watchErr := func(after uint64) error {
		w, err := c.WatchTasks(ctx, &pcnodev1.WatchTasksRequest{AfterRevision: after})
		if err != nil {
			return err
		}
		_, err = w.Recv()
		return err
	}
	err := watchErr(5)
	st := status.Convert(err)
	if st.Code() != codes.OutOfRange {
		t.Fatalf("WatchTasks(after 5) = %v, want OutOfRange", err)
	}
	var info *errdetails.ErrorInfo
	for _, det := range st.Details() {
		if i, ok := det.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	if info.GetReason() != "REVISION_COMPACTED" || info.GetMetadata()["oldest_revision"] != "21" {
		t.Errorf("WatchTasks(after 5) details = %v, want ErrorInfo REVISION_COMPACTED, oldest_revision 21", st.Details())
	}
	if err := watchErr(19); status.Code(err) != codes.OutOfRange {
		t.Errorf("WatchTasks(after 19) = %v, want OutOfRange (20 is pruned)", err)
	}
	err = watchErr(121)
	st = status.Convert(err)
	var br *errdetails.BadRequest
	for _, det := range st.Details() {
		if b, ok := det.(*errdetails.BadRequest); ok {
			br = b
		}
	}
	if st.Code() != codes.InvalidArgument || len(br.GetFieldViolations()) != 1 || br.GetFieldViolations()[0].GetField() != "after_revision" {
		t.Errorf("WatchTasks(after 121) = %v, details %v, want InvalidArgument on after_revision", err, st.Details())
	}
	// After 20 is the oldest point still resumable: 21 to 120 come back.
	w, err := c.WatchTasks(ctx, &pcnodev1.WatchTasksRequest{AfterRevision: 20})
	if err != nil {
		t.Fatal(err)
	}
	got := recvN(t, w, 100)
	if got[0].rev != 21 || got[99].rev != 120 {
		t.Errorf("WatchTasks(after 20) = revisions %d to %d, want 21 to 120", got[0].rev, got[99].rev)
	}
	// From the newest: the next change, with the next revision.
	w, err = c.WatchTasks(ctx, &pcnodev1.WatchTasksRequest{AfterRevision: 120, Labels: map[string]string{"pick": "me"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Header(); err != nil {
		t.Fatal(err)
	}
	if err := runTask(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	if err := runTask(ctx, d, map[string]string{"pick": "me"}); err != nil {
		t.Fatal(err)
	}
	if got := recvN(t, w, 1); got[0].rev != 125 || got[0].state != lifeOf[0] {
		t.Errorf("WatchTasks(after 120, labels) first event = %v, want revision 125 QUEUED (the labelled task)", got[0])
	}
}

// send_initial sends the unfinished tasks with the revision of their last
// state change, then follows from the snapshot's revision: no change the
// snapshot holds is sent again.
func TestWatchSendInitialRevisions(t *testing.T) {
	d := daemon.NewWatchDaemonForTest(t, store.MinHistory)
	c := serveTasks(t, d)
	ctx := t.Context()
	task := &pcnodev1.Task{Id: store.NewID(time.Now()), State: lifeOf[0]}
	got, err := d.CreateTaskForTest(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateForTest(ctx, got.GetId(), func(t *pcnodev1.Task) { t.State = lifeOf[1] }); err != nil {
		t.Fatal(err)
	}
	w, err := c.WatchTasks(ctx, &pcnodev1.WatchTasksRequest{SendInitial: true})
	if err != nil {
		t.Fatal(err)
	}
	if first := recvN(t, w, 1)[0]; first.rev != 2 || first.state != lifeOf[1] {
		t.Errorf("initial event = %v, want revision 2 PREPARING", first)
	}
	if _, err := d.UpdateForTest(ctx, got.GetId(), func(t *pcnodev1.Task) { t.State = lifeOf[2] }); err != nil {
		t.Fatal(err)
	}
	if next := recvN(t, w, 1)[0]; next.rev != 3 || next.state != lifeOf[2] {
		t.Errorf("event after the snapshot = %v, want revision 3 RUNNING", next)
	}
}

// blockingWatch is a WatchTasks server stream whose Send blocks after the
// first event until release is closed, as a watcher that stops reading.
type blockingWatch struct {
	grpc.ServerStream
	ctx     context.Context
	first   chan struct{}
	release chan struct{}
	mu      sync.Mutex
	sent    []uint64
}

func (b *blockingWatch) Context() context.Context     { return b.ctx }
func (b *blockingWatch) SendHeader(metadata.MD) error { return nil }
func (b *blockingWatch) Send(r *pcnodev1.WatchTasksResponse) error {
	b.mu.Lock()
	b.sent = append(b.sent, r.GetEvent().GetRevision())
	n := len(b.sent)
	b.mu.Unlock()
	if n == 1 {
		close(b.first)
		<-b.release
	}
	return nil
}

// A watcher more than server.WatchBuffer events behind is ended with
// RESOURCE_EXHAUSTED that names the revision to resume after, and resuming
// there continues without a gap.
func TestWatchSlowWatcherResumable(t *testing.T) {
	d := daemon.NewWatchDaemonForTest(t, store.DefaultHistory)
	ctx := t.Context()
	bw := &blockingWatch{ctx: ctx, first: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- server.NewTaskService(d).WatchTasks(&pcnodev1.WatchTasksRequest{}, bw) }()
	for { // until it has subscribed
		if d.SubscribersForTest() > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := runTask(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	<-bw.first
	for range server.WatchBuffer/len(lifeOf) + 1 {
		if err := runTask(ctx, d, nil); err != nil {
			t.Fatal(err)
		}
	}
	close(bw.release)
	err := <-done
	last := bw.sent[len(bw.sent)-1]
	if status.Code(daemon.ToStatusForTest(err)) != codes.ResourceExhausted || !strings.Contains(err.Error(), fmt.Sprintf("after_revision %d", last)) {
		t.Fatalf("WatchTasks of a stalled watcher = %v, want ResourceExhausted naming after_revision %d", err, last)
	}
	for i, rev := range bw.sent {
		if rev != uint64(i+1) {
			t.Fatalf("stalled watcher's event %d has revision %d, want %d", i, rev, i+1)
		}
	}
	rest, _, err := d.ChangesAfter(ctx, last)
	if err != nil || len(rest) == 0 || rest[0].Revision != last+1 {
		t.Errorf("Changes(after %d) = %d changes, %v, want them from %d", last, len(rest), err, last+1)
	}
}

// The config's bounds of watch_history are the store's.
func TestWatchHistoryBounds(t *testing.T) {
	if config.MinWatchHistory != store.MinHistory || config.MaxWatchHistory != store.MaxHistory {
		t.Errorf("config watch_history bounds %d..%d, store's %d..%d", config.MinWatchHistory, config.MaxWatchHistory, store.MinHistory, store.MaxHistory)
	}
	if n := config.DefaultConfig().Tasks.WatchHistory; n != store.DefaultHistory {
		t.Errorf("default watch_history %d, store's default %d", n, store.DefaultHistory)
	}
}
