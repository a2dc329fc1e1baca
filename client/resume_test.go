package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// fastResume shortens the reconnect backoff for t.
func fastResume(t *testing.T) {
	i, m := resumeInitial, resumeMax
	resumeInitial, resumeMax = 5*time.Millisecond, 20*time.Millisecond
	t.Cleanup(func() { resumeInitial, resumeMax = i, m })
}

func entries(from, to uint64) []*pcnodev1.LogEntry {
	var out []*pcnodev1.LogEntry
	for s := from; s <= to; s++ {
		out = append(out, &pcnodev1.LogEntry{Sequence: s, Data: fmt.Appendf(nil, "line %d\n", s)})
	}
	return out
}

// TestFollowLogsResume drops the stream three ways (Unavailable, a clean
// end while the task still runs, a resent overlap) and checks that fn sees
// every entry once, in order, with the daemon's gap passed through.
func TestFollowLogsResume(t *testing.T) {
	fastResume(t)
	var (
		mu     sync.Mutex
		afters []uint64
	)
	send := func(s grpc.ServerStreamingServer[pcnodev1.StreamLogsResponse], from, to uint64) {
		for lo := from; lo <= to; lo += 4 {
			s.Send(&pcnodev1.StreamLogsResponse{Entries: entries(lo, min(lo+3, to))})
		}
	}
	f := &fakeTasks{}
	f.streamLogs = func(req *pcnodev1.StreamLogsRequest, s grpc.ServerStreamingServer[pcnodev1.StreamLogsResponse]) error {
		mu.Lock()
		afters = append(afters, req.GetAfterSequence())
		n := len(afters)
		mu.Unlock()
		if req.GetTaskId() != "t1" || !req.GetFollow() {
			return status.Errorf(codes.InvalidArgument, "want follow of t1, got %v", req)
		}
		switch n {
		case 1:
			send(s, 1, 6)
			return status.Error(codes.Unavailable, "connection reset")
		case 2:
			send(s, 5, 12) // 5 and 6 again: must not be delivered twice
			return status.Error(codes.Unavailable, "connection reset")
		case 3:
			send(s, 13, 19)
			s.Send(&pcnodev1.StreamLogsResponse{Gap: &pcnodev1.LogGap{FirstMissedSequence: 18, LastMissedSequence: 25}})
			send(s, 26, 30)
			return nil // ended, but the task still runs: resume
		default:
			send(s, req.GetAfterSequence()+1, 50)
			return nil
		}
	}
	f.getTask = func(context.Context, *pcnodev1.GetTaskRequest) (*pcnodev1.GetTaskResponse, error) {
		state := pcnodev1.TaskState_TASK_STATE_RUNNING
		if f.streamLogsCalls.Load() >= 4 {
			state = pcnodev1.TaskState_TASK_STATE_SUCCEEDED
		}
		return &pcnodev1.GetTaskResponse{Task: &pcnodev1.Task{Id: "t1", State: state}}, nil
	}
	c := dial(t, serveUnix(t, f))
	var got []*pcnodev1.StreamLogsResponse
	err := c.FollowLogs(t.Context(), "t1", 0, func(r *pcnodev1.StreamLogsResponse) error {
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatalf("FollowLogs() = %v", err)
	}
	var seqs []uint64
	var gaps []*pcnodev1.LogGap
	for _, r := range got {
		if r.GetGap() != nil {
			gaps = append(gaps, r.GetGap())
			seqs = append(seqs, 0) // where the gap came
		}
		for _, e := range r.GetEntries() {
			seqs = append(seqs, e.GetSequence())
		}
	}
	var want []uint64
	for s := uint64(1); s <= 50; s++ {
		switch {
		case s == 20:
			want = append(want, 0)
		case s > 20 && s <= 25:
		default:
			want = append(want, s)
		}
	}
	if diff := cmp.Diff(want, seqs); diff != "" {
		t.Errorf("sequences delivered (0 = the gap) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]*pcnodev1.LogGap{{FirstMissedSequence: 20, LastMissedSequence: 25}}, gaps, protocmp.Transform()); diff != "" {
		t.Errorf("gaps (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]uint64{0, 6, 12, 30}, afters); diff != "" {
		t.Errorf("after_sequence of each stream (-want +got):\n%s", diff)
	}
}

// TestFollowLogsEnds: what ends a follow without resuming it.
func TestFollowLogsEnds(t *testing.T) {
	fastResume(t)
	f := &fakeTasks{}
	f.streamLogs = func(req *pcnodev1.StreamLogsRequest, s grpc.ServerStreamingServer[pcnodev1.StreamLogsResponse]) error {
		if req.GetTaskId() == "gone" {
			return status.Error(codes.NotFound, "task gone not found")
		}
		s.Send(&pcnodev1.StreamLogsResponse{Entries: entries(req.GetAfterSequence()+1, req.GetAfterSequence()+3)})
		return status.Error(codes.Unavailable, "reset")
	}
	c := dial(t, serveUnix(t, f))
	if err := c.FollowLogs(t.Context(), "gone", 0, func(*pcnodev1.StreamLogsResponse) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("FollowLogs(gone) = %v, want ErrNotFound", err)
	}
	stop := errors.New("enough")
	var last uint64
	err := c.FollowLogs(t.Context(), "t1", 100, func(r *pcnodev1.StreamLogsResponse) error {
		last = r.GetEntries()[len(r.GetEntries())-1].GetSequence()
		if last >= 109 {
			return stop
		}
		return nil
	})
	if err != stop || last != 109 {
		t.Errorf("FollowLogs(fn stops at 109) = %v after %d, want fn's error as is after 109", err, last)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := c.FollowLogs(ctx, "t1", 0, func(*pcnodev1.StreamLogsResponse) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("FollowLogs(ctx times out) = %v, want context.DeadlineExceeded", err)
	}
}

func stateEvent(rev uint64, id string) *pcnodev1.WatchTasksResponse {
	return &pcnodev1.WatchTasksResponse{Event: &pcnodev1.TaskEvent{TaskId: id, Revision: rev, Event: &pcnodev1.TaskEvent_StateChange{StateChange: &pcnodev1.Task{Id: id}}}}
}

// TestWatchTasksResume drops the watch and checks each new stream resumes
// after the highest revision delivered, without the snapshot, with the same
// filter; duplicates are not delivered; a compacted revision ends the watch
// with ErrOutOfRange and the oldest revision.
func TestWatchTasksResume(t *testing.T) {
	fastResume(t)
	var (
		mu   sync.Mutex
		reqs []*pcnodev1.WatchTasksRequest
	)
	f := &fakeTasks{}
	f.watchTasks = func(req *pcnodev1.WatchTasksRequest, s grpc.ServerStreamingServer[pcnodev1.WatchTasksResponse]) error {
		mu.Lock()
		reqs = append(reqs, proto.CloneOf(req))
		n := len(reqs)
		mu.Unlock()
		switch n {
		case 1: // a snapshot (revisions of each task's last write, any order), then live
			for _, r := range []uint64{7, 3, 8, 9, 10} {
				s.Send(stateEvent(r, fmt.Sprint("t", r)))
			}
			return status.Error(codes.Unavailable, "connection reset")
		case 2:
			for r := uint64(9); r <= 15; r++ { // 9 and 10 again
				s.Send(stateEvent(r, fmt.Sprint("t", r)))
			}
			return nil // the daemon shut down
		case 3:
			for r := uint64(16); r <= 20; r++ {
				s.Send(stateEvent(r, fmt.Sprint("t", r)))
			}
			return status.Error(codes.ResourceExhausted, "watcher more than 4096 events behind; resume from revision 20")
		default:
			st, _ := status.New(codes.OutOfRange, "revision 20 is compacted").WithDetails(
				&errdetails.ErrorInfo{Reason: ReasonRevisionCompacted, Metadata: map[string]string{"oldest_revision": "42"}})
			return st.Err()
		}
	}
	c := dial(t, serveUnix(t, f))
	var revs []uint64
	err := c.WatchTasks(t.Context(), &pcnodev1.WatchTasksRequest{Labels: map[string]string{"team": "a"}, SendInitial: true}, func(ev *pcnodev1.TaskEvent) error {
		revs = append(revs, ev.GetRevision())
		return nil
	})
	var e *Error
	if !errors.Is(err, ErrOutOfRange) || !errors.As(err, &e) || e.OldestRevision != 42 {
		t.Errorf("WatchTasks() = %v, want ErrOutOfRange with OldestRevision 42", err)
	}
	want := []uint64{7, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	if diff := cmp.Diff(want, revs); diff != "" {
		t.Errorf("revisions delivered (-want +got):\n%s", diff)
	}
	labels := map[string]string{"team": "a"}
	wantReqs := []*pcnodev1.WatchTasksRequest{
		{Labels: labels, SendInitial: true},
		{Labels: labels, AfterRevision: 10},
		{Labels: labels, AfterRevision: 15},
		{Labels: labels, AfterRevision: 20},
	}
	if diff := cmp.Diff(wantReqs, reqs, protocmp.Transform()); diff != "" {
		t.Errorf("requests of each stream (-want +got):\n%s", diff)
	}
}

// TestWatchTasksCapRefused: a stream refused by the daemon's stream cap is
// an error, not something to retry.
func TestWatchTasksCapRefused(t *testing.T) {
	fastResume(t)
	f := &fakeTasks{}
	f.watchTasks = func(*pcnodev1.WatchTasksRequest, grpc.ServerStreamingServer[pcnodev1.WatchTasksResponse]) error {
		return status.Error(codes.ResourceExhausted, "[streams] max_per_client 4 reached")
	}
	c := dial(t, serveUnix(t, f))
	err := c.WatchTasks(t.Context(), &pcnodev1.WatchTasksRequest{}, func(*pcnodev1.TaskEvent) error { return nil })
	if !errors.Is(err, ErrResourceExhausted) || !strings.Contains(err.Error(), "max_per_client") {
		t.Errorf("WatchTasks(over the cap) = %v, want ErrResourceExhausted naming the limit", err)
	}
	if n := f.watchCalls.Load(); n != 1 {
		t.Errorf("WatchTasks opened %d streams, want 1", n)
	}
}

// TestWatchTasksDropBeforeAnyEvent: a watch dropped before it delivered
// anything is opened again as first asked.
func TestWatchTasksDropBeforeAnyEvent(t *testing.T) {
	fastResume(t)
	f := &fakeTasks{}
	stop := errors.New("stop")
	var got []*pcnodev1.WatchTasksRequest
	f.watchTasks = func(req *pcnodev1.WatchTasksRequest, s grpc.ServerStreamingServer[pcnodev1.WatchTasksResponse]) error {
		got = append(got, proto.CloneOf(req))
		if len(got) < 3 {
			s.SendHeader(nil) // commit the stream, so gRPC's own retry does not hide the drop
			return status.Error(codes.Unavailable, "reset")
		}
		return s.Send(stateEvent(5, "t5"))
	}
	c := dial(t, serveUnix(t, f))
	err := c.WatchTasks(t.Context(), &pcnodev1.WatchTasksRequest{AfterRevision: 4}, func(*pcnodev1.TaskEvent) error { return stop })
	if err != stop {
		t.Errorf("WatchTasks() = %v, want fn's error", err)
	}
	for i, r := range got {
		if r.GetAfterRevision() != 4 || r.GetSendInitial() {
			t.Errorf("stream %d asked %v, want after_revision 4 as first asked", i, r)
		}
	}
	if len(got) != 3 {
		t.Errorf("%d streams opened, want 3", len(got))
	}
}

// TestWatchTasksAcrossServerRestart drops the watch for real: the server
// is stopped (every connection closed) and a new one serves the same
// socket, as a restarted daemon would. The watch resumes on the new server
// from the last revision delivered.
func TestWatchTasksAcrossServerRestart(t *testing.T) {
	fastResume(t)
	dir, err := os.MkdirTemp("", "pcc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "api.sock")
	sent := make(chan struct{})
	var (
		mu     sync.Mutex
		afters []uint64
	)
	start := func(upTo uint64, once func()) *grpc.Server {
		f := &fakeTasks{}
		f.watchTasks = func(req *pcnodev1.WatchTasksRequest, s grpc.ServerStreamingServer[pcnodev1.WatchTasksResponse]) error {
			mu.Lock()
			afters = append(afters, req.GetAfterRevision())
			mu.Unlock()
			for r := req.GetAfterRevision() + 1; r <= upTo; r++ {
				if err := s.Send(stateEvent(r, fmt.Sprint("t", r))); err != nil {
					return err
				}
			}
			if once != nil {
				once()
			}
			<-s.Context().Done()
			return s.Context().Err()
		}
		lis, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		pcnodev1.RegisterTaskServiceServer(srv, f)
		go srv.Serve(lis)
		return srv
	}
	first := start(5, sync.OnceFunc(func() { close(sent) }))
	c := dial(t, sock)
	done := errors.New("done")
	var revs []uint64
	watched := make(chan error, 1)
	go func() {
		watched <- c.WatchTasks(t.Context(), &pcnodev1.WatchTasksRequest{}, func(ev *pcnodev1.TaskEvent) error {
			revs = append(revs, ev.GetRevision())
			if ev.GetRevision() == 10 {
				return done
			}
			return nil
		})
	}()
	<-sent
	time.Sleep(50 * time.Millisecond) // let the client read what was sent
	first.Stop()
	os.Remove(sock)
	second := start(10, nil)
	defer second.Stop()
	select {
	case err := <-watched:
		if err != done {
			t.Fatalf("WatchTasks() = %v, want fn's error at revision 10", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("WatchTasks did not reach revision 10 on the restarted server")
	}
	if diff := cmp.Diff([]uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, revs); diff != "" {
		t.Errorf("revisions delivered (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]uint64{0, 5}, afters); diff != "" {
		t.Errorf("after_revision of each stream (-want +got):\n%s", diff)
	}
}
