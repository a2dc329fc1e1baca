package client_test

// Integration test of the client against a real pcnoded over its TCP
// listener with mutual TLS: certificates made at test time, a run, a log
// follow and a task watch through a loopback TCP proxy the test cuts, and
// the role check as the client reports it.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// tlsWatched is one state change as a watcher saw it.
type tlsWatched struct {
	rev   uint64
	id    string
	state pcnodev1.TaskState
}

func (w tlsWatched) String() string {
	return fmt.Sprintf("%d:%s:%v", w.rev, w.id[max(0, len(w.id)-4):], w.state)
}

// tlsWatchLog collects a watch's state changes.
type tlsWatchLog struct {
	mu     sync.Mutex
	events []tlsWatched
}

func (l *tlsWatchLog) add(ev *pcnodev1.TaskEvent) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, tlsWatched{ev.GetRevision(), ev.GetTaskId(), ev.GetStateChange().GetState()})
	return len(l.events)
}

func (l *tlsWatchLog) snapshot() []tlsWatched {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// waitFor polls until done holds for what l has seen (or the deadline).
func (l *tlsWatchLog) waitFor(t *testing.T, what string, deadline time.Time, done func([]tlsWatched) bool) []tlsWatched {
	t.Helper()
	for {
		got := l.snapshot()
		if done(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch waiting for %s: %d events: %v", what, len(got), got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// finalFor reports whether events hold a final state of every id.
func finalFor(events []tlsWatched, ids []string) bool {
	final := map[string]bool{}
	for _, e := range events {
		if client.IsFinal(e.state) {
			final[e.id] = true
		}
	}
	for _, id := range ids {
		if !final[id] {
			return false
		}
	}
	return true
}

// TestIntegrationClientTLS dials a real pcnoded's TCP listener with
// client.Dial, a CA file and a client certificate of a submitter, all made
// at test time: RunEvents runs a task to its end with its states and log;
// FollowLogs follows the same task's log and WatchTasks follows every state
// change from a revision, both over a second connection through a loopback
// TCP proxy that the test cuts three times while eight tasks change state
// concurrently. The log arrives whole with consecutive sequence numbers and
// the watch sees exactly the state changes that an uncut watch on the unix
// socket saw after that revision, each once and in order. A viewer's
// SubmitTask is ErrPermissionDenied and stores nothing.
func TestIntegrationClientTLS(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{NoRace: true, TCP: true})
	img := d.ImportImage(t, testimage.Image{}).GetName()

	dir := t.TempDir()
	caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "submitter.pem"), filepath.Join(dir, "submitter-key.pem")
	subCert := d.CA.Client(t, daemontest.CertOptions{URI: []string{daemontest.RoleIdentity("submitter")}})
	daemontest.WriteFile(t, caFile, d.CA.PEM)
	daemontest.WriteFile(t, certFile, subCert.CertPEM)
	daemontest.WriteFile(t, keyFile, subCert.KeyPEM)
	tlsOpts := []client.Option{client.WithCA(caFile), client.WithClientCertificate(certFile, keyFile)}
	sub, err := client.Dial(d.TCPAddress, tlsOpts...)
	if err != nil {
		t.Fatalf("Dial(%s) = %v", d.TCPAddress, err)
	}
	defer sub.Close()
	proxy := newCutProxy(t, "tcp", d.TCPAddress)
	// The proxy is another address than the daemon's: name the server.
	px, err := client.Dial(proxy.addr, append(tlsOpts, client.WithServerName("localhost"))...)
	if err != nil {
		t.Fatalf("Dial(%s) = %v", proxy.addr, err)
	}
	defer px.Close()

	ctx, cancel := context.WithTimeout(t.Context(), daemontest.WaitTimeout)
	defer cancel()
	deadline := time.Now().Add(daemontest.WaitTimeout)

	// The reference: a watch over the unix socket, live before anything
	// is submitted, never cut.
	var truth tlsWatchLog
	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	ts, err := d.Client.Tasks.WatchTasks(tctx, &pcnodev1.WatchTasksRequest{})
	if err == nil {
		_, err = ts.Header()
	}
	if err != nil {
		t.Fatalf("WatchTasks over the socket = %v", err)
	}
	go func() {
		for {
			resp, err := ts.Recv()
			if err != nil {
				return
			}
			truth.add(resp.GetEvent())
		}
	}()

	sleepSpec := func(name string) *pcnodev1.TaskSpec {
		return &pcnodev1.TaskSpec{
			Name:     name,
			Image:    img,
			Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "sleep"},
			Env:      []*pcnodev1.EnvVar{{Name: "DURATION", Value: "0.5s"}},
		}
	}

	// A first task over TLS; the watch through the proxy resumes after its
	// first state change.
	resp, err := sub.Tasks.SubmitTask(ctx, &pcnodev1.SubmitTaskRequest{Spec: sleepSpec("tls-first")})
	if err != nil {
		t.Fatalf("SubmitTask over TLS = %v", err)
	}
	firstID := resp.GetTask().GetId()
	if by := resp.GetTask().GetSubmittedBy(); by != daemontest.RoleIdentity("submitter") {
		t.Errorf("task submitted_by = %q, want the certificate's %q", by, daemontest.RoleIdentity("submitter"))
	}
	var from uint64
	truth.waitFor(t, "the first task's first change", deadline, func(got []tlsWatched) bool {
		for _, e := range got {
			if e.id == firstID {
				from = e.rev
				return true
			}
		}
		return false
	})

	var watched tlsWatchLog
	cutAt := map[int]bool{3: true, 9: true, 17: true}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- px.WatchTasks(wctx, &pcnodev1.WatchTasksRequest{AfterRevision: from}, func(ev *pcnodev1.TaskEvent) error {
			if cutAt[watched.add(ev)] {
				proxy.cut()
			}
			return nil
		})
	}()

	// The run, on the direct connection, with the iterator.
	const lines = 40
	var steps []string
	var want strings.Builder
	for i := 1; i <= lines; i++ {
		steps = append(steps, fmt.Sprintf("echo tls-%03d -- sleep 0.05", i))
		fmt.Fprintf(&want, "tls-%03d\n", i)
	}
	runSpec := &pcnodev1.TaskSpec{
		Name:     "tls-run",
		Image:    img,
		Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "steps"},
		Env:      []*pcnodev1.EnvVar{{Name: "PCTEST_STEPS", Value: strings.Join(steps, " -- ")}},
	}
	runIDs := make(chan string, 1)
	type runResult struct {
		states []pcnodev1.TaskState
		log    strings.Builder
		err    error
	}
	ran := make(chan *runResult, 1)
	go func() {
		r := &runResult{}
		req := &pcnodev1.RunTaskRequest{Target: &pcnodev1.RunTaskRequest_Submit{Submit: &pcnodev1.SubmitTaskRequest{Spec: runSpec}}, IncludeLogs: true}
		for ev, err := range sub.RunEvents(ctx, req) {
			if err != nil {
				r.err = err
				break
			}
			if s := ev.GetStateChange(); s != nil {
				if len(r.states) == 0 {
					runIDs <- s.GetId()
				}
				r.states = append(r.states, s.GetState())
			}
			r.log.Write(ev.GetLog().GetData())
		}
		ran <- r
	}()
	var runID string
	select {
	case runID = <-runIDs:
	case r := <-ran:
		t.Fatalf("RunEvents over TLS ended before the first state change: %v", r.err)
	}

	// Six more tasks, concurrently, while the proxy is cut.
	ids := []string{firstID, runID}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			resp, err := sub.Tasks.SubmitTask(ctx, &pcnodev1.SubmitTaskRequest{Spec: sleepSpec(fmt.Sprintf("tls-%d", i))})
			if err != nil {
				t.Errorf("SubmitTask(tls-%d) over TLS = %v", i, err)
				return
			}
			mu.Lock()
			ids = append(ids, resp.GetTask().GetId())
			mu.Unlock()
		})
	}

	// The run's log, through the proxy.
	var (
		seqs []uint64
		got  strings.Builder
		gaps int
	)
	err = px.FollowLogs(ctx, runID, 0, func(r *pcnodev1.StreamLogsResponse) error {
		if r.GetGap() != nil {
			gaps++
		}
		for _, e := range r.GetEntries() {
			seqs = append(seqs, e.GetSequence())
			got.Write(e.GetData())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("FollowLogs(%s) through the proxy = %v", runID, err)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	checkFollowed(t, runID, got.String(), want.String(), seqs, gaps)

	r := <-ran
	if r.err != nil {
		t.Fatalf("RunEvents over TLS = %v", r.err)
	}
	if n := len(r.states); n == 0 || r.states[n-1] != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
		t.Errorf("RunEvents states = %v, want them to end SUCCEEDED", r.states)
	}
	if r.log.String() != want.String() {
		t.Errorf("RunEvents log =\n%s\nwant\n%s", r.log.String(), want.String())
	}

	// The watch through the proxy against the uncut one.
	seen := watched.waitFor(t, "every task's final state", deadline, func(got []tlsWatched) bool { return finalFor(got, ids) })
	wcancel()
	if err := <-watchDone; !errors.Is(err, context.Canceled) {
		t.Errorf("WatchTasks through the proxy = %v, want it to end only when cancelled", err)
	}
	seen = watched.snapshot()
	last := seen[len(seen)-1].rev
	ref := truth.waitFor(t, fmt.Sprint("revision ", last), deadline, func(got []tlsWatched) bool {
		return len(got) > 0 && got[len(got)-1].rev >= last
	})
	var wantEvents []tlsWatched
	for _, e := range ref {
		if e.rev > from && e.rev <= last {
			wantEvents = append(wantEvents, e)
		}
	}
	if !slices.Equal(seen, wantEvents) {
		t.Errorf("WatchTasks(after %d) through the cut proxy saw\n%v\nthe socket's uncut watch saw\n%v", from, seen, wantEvents)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].rev <= seen[i-1].rev {
			t.Errorf("WatchTasks revisions not increasing at %d: %v then %v", i, seen[i-1], seen[i])
		}
	}
	for _, id := range ids {
		if task := d.GetTask(t, id); task.GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
			t.Errorf("task %s (%s) = %v, want SUCCEEDED", id, task.GetSpec().GetName(), task.GetState())
		}
	}
	proxy.mu.Lock()
	cuts, severed, accepted := proxy.cuts, proxy.severed, proxy.accepted
	proxy.mu.Unlock()
	if cuts != len(cutAt) || severed < 1 || accepted < severed+1 {
		t.Errorf("the proxy was cut %d times (%d closing a connection) and accepted %d connections; want %d cuts, each that closed one followed by a reconnect", cuts, severed, accepted, len(cutAt))
	}
	t.Logf("watch: %d state changes after revision %d across %d cuts over %d connections; log: %d entries", len(seen), from, cuts, accepted, len(seqs))

	// A viewer reads, and may not submit.
	viewer := d.CA.Client(t, daemontest.CertOptions{URI: []string{daemontest.RoleIdentity("viewer")}})
	vc, err := client.Dial(d.TCPAddress, client.WithCAPool(d.CA.Pool()), client.WithTLSConfig(&tls.Config{Certificates: []tls.Certificate{viewer.TLS}}))
	if err != nil {
		t.Fatalf("Dial(%s) as viewer = %v", d.TCPAddress, err)
	}
	defer vc.Close()
	if _, err := vc.Tasks.GetTask(ctx, &pcnodev1.GetTaskRequest{TaskId: runID}); err != nil {
		t.Errorf("viewer GetTask(%s) = %v", runID, err)
	}
	before := countTasks(t, d)
	_, err = vc.Tasks.SubmitTask(ctx, &pcnodev1.SubmitTaskRequest{Spec: sleepSpec("tls-viewer")})
	if !errors.Is(err, client.ErrPermissionDenied) {
		t.Errorf("viewer SubmitTask = %v, want ErrPermissionDenied", err)
	} else if !strings.Contains(err.Error(), "submitter") {
		t.Errorf("viewer SubmitTask = %v, want it to name the role needed (submitter)", err)
	}
	if after := countTasks(t, d); after != before {
		t.Errorf("tasks after the viewer's SubmitTask: %d, before: %d; want nothing stored", after, before)
	}
}

// countTasks returns how many tasks d holds (over its socket, as admin).
func countTasks(t *testing.T, d *daemontest.Daemon) int {
	t.Helper()
	n, token := 0, ""
	for {
		resp, err := d.Client.Tasks.ListTasks(t.Context(), &pcnodev1.ListTasksRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatalf("ListTasks() = %v", err)
		}
		n += len(resp.GetTasks())
		if token = resp.GetNextPageToken(); token == "" {
			return n
		}
	}
}
