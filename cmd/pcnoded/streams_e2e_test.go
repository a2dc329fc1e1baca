package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	"github.com/pcnode/pcnode/internal/testimage/pattern"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// procMemory reads VmRSS and VmHWM (peak RSS) of pid, in bytes.
func procMemory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %q: %w", k, v, err)
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	return rss, hwm, nil
}

// followerStreamBytes is what the documented bound allows one log stream
// to hold (see [streams] buffer_bytes in `pcnoded config default`): the
// batch, its encoded message and the file buffer.
func followerStreamBytes(bufferBytes int64) int64 { return 3*bufferBytes + 72<<10 }

// followerResult is what runFollowers measured.
type followerResult struct {
	followers                 int
	baseline, peak, after     int64 // VmRSS before, highest sampled, 10 s after the end
	hwm                       int64 // VmHWM at the end of the followers
	bound                     int64 // documented bound on the peak
	fastBytes, fastEntries    int64 // what one fast follower received
	duration                  time.Duration
	bufferBytes, streamsBound int64
}

// runFollowers starts pcnoded (without the race detector, whose shadow
// memory would swamp what is measured), runs a task writing 8 MiB of
// 64-byte lines, and follows its log with n StreamLogs streams over four
// connections: four read everything as fast as they can, the others read
// one response and then stop reading until the fast ones are done, so that
// the daemon holds as much for them as their streams allow. It samples the
// daemon's RSS every 50 ms throughout and once more 10 s after every
// stream has ended.
func runFollowers(tb testing.TB, n int) followerResult {
	const (
		size = 8 << 20
		fast = 4
	)
	d := daemontest.Start(tb, daemontest.Options{NoRace: true, LogLevel: "warn", Configure: func(c *config.Config) {
		c.Streams.MaxPerClient = 256
		c.Streams.MaxTotal = 512
	}})
	img := d.ImportImage(tb, testimage.Image{}).GetName()
	res := followerResult{followers: n, bufferBytes: d.Config.Streams.BufferBytes.Bytes()}
	pid := d.PID()
	var err error
	if res.baseline, _, err = procMemory(pid); err != nil {
		tb.Fatal(err)
	}
	res.streamsBound = followerStreamBytes(res.bufferBytes)
	res.bound = res.baseline + int64(n)*res.streamsBound

	var conns []pcnodev1.TaskServiceClient
	for range 4 {
		cc, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { cc.Close() })
		conns = append(conns, pcnodev1.NewTaskServiceClient(cc))
	}

	task := d.Submit(tb, &pcnodev1.TaskSpec{
		Name: "chatty", Image: img,
		Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "stdout"},
		Env:      []*pcnodev1.EnvVar{{Name: "BYTES", Value: strconv.Itoa(size)}},
	})
	ctx, cancel := context.WithTimeout(tb.Context(), 2*time.Minute)
	defer cancel()

	var peak atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, _, err := procMemory(pid); err == nil && rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()

	start := time.Now()
	slowCtx, releaseSlow := context.WithCancel(ctx)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		started sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for i := range n {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			sctx := ctx
			if i >= fast {
				sctx = slowCtx
			}
			s, err := conns[i%len(conns)].StreamLogs(sctx, &pcnodev1.StreamLogsRequest{TaskId: task.GetId(), Follow: true})
			if err != nil {
				started.Done()
				fail(fmt.Errorf("follower %d: %w", i, err))
				return
			}
			first := true
			var got, entries int64
			next := uint64(1)
			for {
				resp, err := s.Recv()
				if first {
					started.Done()
					first = false
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					if i >= fast && status.Code(err) == codes.Canceled {
						return // released
					}
					fail(fmt.Errorf("follower %d: %w", i, err))
					return
				}
				if resp.GetGap() != nil {
					fail(fmt.Errorf("follower %d: gap %v in a log that keeps everything", i, resp.GetGap()))
				}
				for _, e := range resp.GetEntries() {
					if e.GetSequence() != next {
						fail(fmt.Errorf("follower %d: entry %d, want %d", i, e.GetSequence(), next))
						return
					}
					next++
					got += int64(len(e.GetData()))
					entries++
				}
				if i >= fast {
					// Stop reading; the stream stays open until released.
					<-slowCtx.Done()
					return
				}
			}
			if got != size {
				fail(fmt.Errorf("follower %d: %d bytes, want %d", i, got, size))
			}
			mu.Lock()
			res.fastBytes, res.fastEntries = got, entries
			mu.Unlock()
		}()
	}
	started.Wait()
	tb.Logf("%v: every follower has its first response", time.Since(start))
	// The fast followers end with the log; the slow ones are then let go.
	final := d.WaitTask(tb, task.GetId(), 0)
	if final.GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
		tb.Fatalf("chatty task ended %v: %s", final.GetState(), final.GetMessage())
	}
	tb.Logf("%v: task finished", time.Since(start))
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		done := res.fastBytes == size
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Logf("%v: fast followers done", time.Since(start))
	releaseSlow()
	wg.Wait()
	res.duration = time.Since(start)
	close(stopSampling)
	<-sampled
	res.peak = peak.Load()
	if _, res.hwm, err = procMemory(pid); err != nil {
		tb.Fatal(err)
	}
	for _, err := range errs {
		tb.Error(err)
	}
	time.Sleep(10 * time.Second)
	if res.after, _, err = procMemory(pid); err != nil {
		tb.Fatal(err)
	}
	return res
}

func (r followerResult) print(w io.Writer) {
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	fmt.Fprintf(w, "%d StreamLogs followers of a task writing 8 MiB in 64-byte lines (4 fast, %d stalled), %v:\n", r.followers, r.followers-4, r.duration.Round(time.Millisecond))
	fmt.Fprintf(w, "  daemon RSS before      %s\n", mib(r.baseline))
	fmt.Fprintf(w, "  daemon RSS peak        %s (sampled every 50 ms; VmHWM %s)\n", mib(r.peak), mib(r.hwm))
	fmt.Fprintf(w, "  bound                  %s = before + %d × (3 × buffer_bytes %s + 72 KiB)\n", mib(r.bound), r.followers, mib(r.bufferBytes))
	fmt.Fprintf(w, "  daemon RSS 10 s after  %s (bound: before + 32 MiB = %s)\n", mib(r.after), mib(r.baseline+32<<20))
}

// TestIntegrationStreamFollowersMemory follows one chatty task's log with
// 200 StreamLogs streams, most of which stop reading, and checks that the
// daemon's RSS stays under the documented per-stream bound throughout and
// falls back to near its starting point 10 s after the streams end.
func TestIntegrationStreamFollowersMemory(t *testing.T) {
	r := runFollowers(t, 200)
	var b strings.Builder
	r.print(&b)
	t.Log("\n" + b.String())
	if r.peak > r.bound || r.hwm > r.bound {
		t.Errorf("daemon RSS peaked at %d bytes (VmHWM %d), over the bound of %d", r.peak, r.hwm, r.bound)
	}
	if r.after > r.baseline+32<<20 {
		t.Errorf("daemon RSS 10 s after the followers ended is %d bytes, want at most %d (before + 32 MiB)", r.after, r.baseline+32<<20)
	}
}

// BenchmarkIntegrationStreamFollowers is the memory measurement of
// TestIntegrationStreamFollowersMemory as a benchmark (`make bench`),
// reporting the peak and after figures and the bound.
func BenchmarkIntegrationStreamFollowers(b *testing.B) {
	var r followerResult
	for range b.N {
		r = runFollowers(b, 200)
	}
	r.print(os.Stdout)
	b.ReportMetric(float64(r.peak)/(1<<20), "peak-MiB")
	b.ReportMetric(float64(r.bound)/(1<<20), "bound-MiB")
	b.ReportMetric(float64(r.after)/(1<<20), "after-MiB")
	if r.peak > r.bound {
		b.Errorf("daemon RSS peaked at %d bytes, over the bound of %d", r.peak, r.bound)
	}
}

// TestIntegrationLogGap makes a follower fall behind rotation: a task
// writes 2 MiB into a log that keeps two 4 KiB files while the follower
// stops reading. The follower must be told of every entry it missed, each
// LogGap in its place and exact, with every entry before and after intact:
// each sequence number is either delivered once or named by one gap.
func TestIntegrationLogGap(t *testing.T) {
	const size = 2 << 20
	d := daemontest.Start(t, daemontest.Options{NoRace: true, LogLevel: "info", Configure: func(c *config.Config) {
		c.Logs.MaxFileSize = config.MustQuantity("4Ki")
		c.Logs.MaxFiles = 2
		c.Streams.BufferBytes = config.MustQuantity(strconv.Itoa(config.MinStreamBufferBytes))
	}})
	img := e2eTestImage(t, d).GetName()
	task := d.Submit(t, &pcnodev1.TaskSpec{
		Name: "rotating", Image: img,
		Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "steps"},
		// The sleep lets the follower attach and read before the flood.
		Env: []*pcnodev1.EnvVar{{Name: "PCTEST_STEPS", Value: "sleep 1 -- write-stdout " + strconv.Itoa(size)}},
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s, err := d.Client.Tasks.StreamLogs(ctx, &pcnodev1.StreamLogsRequest{TaskId: task.GetId(), Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	// Read one response, then stop until the task has written everything.
	var (
		seqs []uint64
		gaps []*pcnodev1.LogGap
	)
	check := func(resp *pcnodev1.StreamLogsResponse) {
		if g := resp.GetGap(); g != nil {
			if len(resp.GetEntries()) != 0 {
				t.Errorf("a response with a gap and %d entries, want one or the other", len(resp.GetEntries()))
			}
			gaps = append(gaps, g)
			seqs = append(seqs, 0) // the gap's place among the entries
		}
		for _, e := range resp.GetEntries() {
			if want := pattern.Line(int64(e.GetSequence() - 1)); !bytes.Equal(e.GetData(), want) {
				t.Fatalf("entry %d = %q, want %q", e.GetSequence(), e.GetData(), want)
			}
			seqs = append(seqs, e.GetSequence())
		}
	}
	resp, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	check(resp)
	final := d.WaitTask(t, task.GetId(), 0)
	e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
	for {
		resp, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("StreamLogs: %v", err)
		}
		check(resp)
	}
	const total = size / pattern.LineLen
	if len(gaps) == 0 {
		t.Fatalf("no gap reported; got %d entries of %d", len(seqs), total)
	}
	// Entries and gaps in order: each gap starts right after the entry
	// before it, and the next entry comes right after the gap.
	next, gi, delivered, missed := uint64(1), 0, 0, uint64(0)
	for i, seq := range seqs {
		if seq == 0 {
			g := gaps[gi]
			gi++
			if g.GetFirstMissedSequence() != next || g.GetLastMissedSequence() < next {
				t.Fatalf("gap %d..%d after entry %d, want it to start at %d", g.GetFirstMissedSequence(), g.GetLastMissedSequence(), next-1, next)
			}
			missed += g.GetLastMissedSequence() - next + 1
			next = g.GetLastMissedSequence() + 1
			continue
		}
		if seq != next {
			t.Fatalf("item %d: entry %d, want %d", i, seq, next)
		}
		next++
		delivered++
	}
	if next-1 != total {
		t.Errorf("last entry %d, want %d", next-1, total)
	}
	t.Logf("%d entries written; the follower got %d and was told of %d missed in %d gaps (%v)", total, delivered, missed, len(gaps), gaps)

	// RunTask with logs, attached after the end, starts with a log_gap
	// event for what rotation removed, then the entries left, then the
	// final state.
	var events []*pcnodev1.TaskEvent
	if _, err := d.Client.Run(ctx, &pcnodev1.RunTaskRequest{Target: &pcnodev1.RunTaskRequest_TaskId{TaskId: task.GetId()}, IncludeLogs: true},
		func(ev *pcnodev1.TaskEvent) error { events = append(events, ev); return nil }); err != nil {
		t.Fatalf("RunTask(attach, include_logs) = %v", err)
	}
	g := events[0].GetLogGap()
	if g == nil || g.GetFirstMissedSequence() != 1 {
		t.Fatalf("RunTask: first event %v, want a log_gap from 1", events[0])
	}
	next = g.GetLastMissedSequence() + 1
	for _, ev := range events[1 : len(events)-1] {
		if e := ev.GetLog(); e == nil || e.GetSequence() != next || !bytes.Equal(e.GetData(), pattern.Line(int64(next-1))) {
			t.Fatalf("RunTask: event %v, want log entry %d", ev, next)
		}
		next++
	}
	if next-1 != total || events[len(events)-1].GetStateChange() == nil {
		t.Errorf("RunTask: entries up to %d then %v, want up to %d then the final state", next-1, events[len(events)-1], total)
	}
}

// TestIntegrationStreamCaps opens streams of every kind the cap counts
// from one client until the per-client cap refuses one with
// RESOURCE_EXHAUSTED naming it; unary calls still work, and closing a
// stream frees its slot.
func TestIntegrationStreamCaps(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{NoRace: true, LogLevel: "info", Configure: func(c *config.Config) {
		c.Streams.MaxPerClient = 3
		c.Streams.MaxTotal = 3
	}})
	tasks := d.Client.Tasks
	nodes := d.Client.Nodes
	type opened struct {
		cancel context.CancelFunc
	}
	open := func(kind string) (opened, error) {
		ctx, cancel := context.WithCancel(t.Context())
		var err error
		switch kind {
		case "WatchTasks":
			var s pcnodev1.TaskService_WatchTasksClient
			if s, err = tasks.WatchTasks(ctx, &pcnodev1.WatchTasksRequest{}); err == nil {
				// No header and no error: the stream ended; Recv says why.
				if md, herr := s.Header(); herr != nil || md == nil {
					_, err = s.Recv()
				}
			}
		case "WatchNode":
			var s pcnodev1.NodeService_WatchNodeClient
			if s, err = nodes.WatchNode(ctx, &pcnodev1.WatchNodeRequest{}); err == nil {
				_, err = s.Recv()
			}
		case "SubmitTasks":
			var s pcnodev1.TaskService_SubmitTasksClient
			if s, err = tasks.SubmitTasks(ctx); err == nil {
				err = s.Send(&pcnodev1.SubmitTasksRequest{})
				if err == nil {
					_, err = s.Recv()
				}
			}
		}
		if err != nil {
			cancel()
			return opened{}, err
		}
		return opened{cancel}, nil
	}
	var held []opened
	for _, kind := range []string{"WatchTasks", "WatchNode", "SubmitTasks"} {
		o, err := open(kind)
		if err != nil {
			t.Fatalf("%s within the cap: %v", kind, err)
		}
		held = append(held, o)
	}
	for _, kind := range []string{"WatchTasks", "WatchNode", "SubmitTasks"} {
		_, err := open(kind)
		st := status.Convert(err)
		if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "streams.max_per_client") || !strings.Contains(st.Message(), "3") {
			t.Errorf("%s over the cap = %v, want RESOURCE_EXHAUSTED naming streams.max_per_client and 3", kind, err)
		}
	}
	// StreamLogs counts too, and is refused before it looks at the task.
	s, err := tasks.StreamLogs(t.Context(), &pcnodev1.StreamLogsRequest{TaskId: "01M89HD3WXN8V5B8AE3ZVY9HSG"})
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("StreamLogs over the cap = %v, want RESOURCE_EXHAUSTED", err)
	}
	if _, err := nodes.GetNode(t.Context(), &pcnodev1.GetNodeRequest{}); err != nil {
		t.Errorf("GetNode with every stream slot taken = %v, want it to work", err)
	}
	held[0].cancel()
	var o opened
	deadline := time.Now().Add(5 * time.Second)
	for {
		if o, err = open("WatchTasks"); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("WatchTasks after closing a stream: %v, want a slot", err)
	}
	o.cancel()
	for _, h := range held[1:] {
		h.cancel()
	}
}
