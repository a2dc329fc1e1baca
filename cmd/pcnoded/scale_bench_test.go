package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/logs"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// The scale-of-state benchmarks (issue 11): a database of many finished
// tasks, and a node with many queued tasks and many log followers. Each
// prints its figures next to the bound and the ratio; none asserts
// a time. Under PCNODE_BENCH_CI=1 the sizes shrink so that the three take
// well under a minute together.

// Bounds of the issue.
const (
	scaleListBound    = 5 * time.Millisecond
	scaleRestartBound = time.Second
	scaleGetNodeBound = 50 * time.Millisecond
)

// scaleSizes are the benchmarks' sizes: the issue's, or CI's.
type scaleSizes struct {
	finished, queued, followers, running int
	calls                                int // timed calls per measured operation
}

func scaleSizesNow() scaleSizes {
	if os.Getenv("PCNODE_BENCH_CI") != "" {
		return scaleSizes{finished: 10_000, queued: 1_000, followers: 10, running: 2, calls: 200}
	}
	return scaleSizes{finished: 100_000, queued: 10_000, followers: 100, running: 4, calls: 500}
}

// scaleLatencies are the durations of repeated calls.
type scaleLatencies []time.Duration

func (l scaleLatencies) quantile(q float64) time.Duration {
	s := slices.Clone(l)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func scaleMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// scalePrintBound prints one figure against its bound, as the other benchmarks
// do, and reports it.
func scalePrintBound(b *testing.B, name, unit string, l scaleLatencies, bound time.Duration) {
	p50, p99 := l.quantile(0.5), l.quantile(0.99)
	fmt.Printf("%s: p50 %.2f ms, p99 %.2f ms over %d calls; bound %.0f ms: ratio p50 %.3f, p99 %.3f\n",
		name, scaleMS(p50), scaleMS(p99), len(l), scaleMS(bound), float64(p50)/float64(bound), float64(p99)/float64(bound))
	b.ReportMetric(scaleMS(p50), unit+"-p50-ms")
	b.ReportMetric(scaleMS(p99), unit+"-p99-ms")
}

// scaleFillFinished writes n finished tasks straight into the stopped daemon's
// bbolt file with the store package, in big transactions: realistic
// records (spec with bindings, env and labels, timestamps spread over the
// last six days, inside the default week of retention, final states with
// reasons and exit codes, an allocation), their logs directories absent.
// Labels: project=demo on all; dag=run-K on the 100 tasks K*100…K*100+99
// (dag=run-0 holds the oldest); series=<i> on each. With logs, each task
// also gets its sealed log (scaleFillLogs).
func scaleFillFinished(b *testing.B, d *daemontest.Daemon, n int, withLogs bool) {
	b.Helper()
	start := time.Now()
	db, err := store.Open(filepath.Join(d.StateDir, "pcnode.db"), store.Options{History: d.Config.Tasks.WatchHistory})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	span := 6 * 24 * time.Hour
	first := time.Now().Add(-span)
	states := []struct {
		state  pcnodev1.TaskState
		reason pcnodev1.TaskReason
		exit   int32
	}{
		{pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0},
		{pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0},
		{pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0},
		{pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT, 1},
		{pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, 143},
	}
	const batch = 10_000
	tasks := make([]*pcnodev1.Task, 0, batch)
	var logged []*pcnodev1.Task
	for i := range n {
		created := first.Add(time.Duration(int64(span) / int64(n) * int64(i)))
		s := states[i%len(states)]
		tasks = append(tasks, &pcnodev1.Task{
			Id:          store.NewID(created),
			State:       s.state,
			Reason:      s.reason,
			Message:     "the container exited",
			ExitCode:    s.exit,
			SubmittedBy: "uid:0",
			Spec: &pcnodev1.TaskSpec{
				Name:     fmt.Sprintf("dcm2nifti series %d", i),
				Image:    "registry.example.org/kaapana/dcm2nifti:0.3.1",
				Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "default"},
				Inputs:   []*pcnodev1.ChannelBinding{{Name: "dicom", HostPath: fmt.Sprintf("/data/batch/%d/dicom", i)}},
				Outputs:  []*pcnodev1.ChannelBinding{{Name: "nifti", HostPath: fmt.Sprintf("/data/batch/%d/nifti", i)}},
				Env:      []*pcnodev1.EnvVar{{Name: "MODE", Value: "fast"}, {Name: "THREADS", Value: "4"}},
				Labels:   map[string]string{"project": "demo", "dag": fmt.Sprint("run-", i/100), "series": fmt.Sprint(i)},
			},
			Allocation: &pcnodev1.Allocation{},
			CreateTime: timestamppb.New(created),
			StartTime:  timestamppb.New(created.Add(200 * time.Millisecond)),
			FinishTime: timestamppb.New(created.Add(3 * time.Second)),
			UpdateTime: timestamppb.New(created.Add(3 * time.Second)),
		})
		if len(tasks) == batch || i == n-1 {
			if err := db.CreateTasks(ctx, tasks); err != nil {
				b.Fatal(err)
			}
			if withLogs {
				logged = append(logged, tasks...)
			}
			tasks = make([]*pcnodev1.Task, 0, batch)
		}
	}
	if withLogs {
		scaleFillLogs(b, d, logged)
	}
	fmt.Printf("filled %d finished tasks (logs: %v) in %.1f s\n", n, withLogs, time.Since(start).Seconds())
}

// scaleFillLogs gives each task a sealed log of 32 KiB of stdout, as the log
// driver writes it (one log made with logs.RunDriver, copied), with the
// directory's and files' modification times at the task's finish: the
// logs of the last day are copies, older ones hard links to a few copies
// (their times are the oldest task's).
func scaleFillLogs(b *testing.B, d *daemontest.Daemon, tasks []*pcnodev1.Task) {
	b.Helper()
	tmpl := filepath.Join(d.Dir, "log-template")
	line := strings.Repeat("x", 127) + "\n"
	out := strings.NewReader(strings.Repeat(line, 256))
	if err := logs.RunDriver(context.Background(), logs.DriverConfig{Dir: tmpl}, out, strings.NewReader("")); err != nil {
		b.Fatal(err)
	}
	if info, err := logs.Stat(tmpl); err != nil || !info.Ended || info.LastSeq != 256 {
		b.Fatalf("template log = %+v, %v; want 256 entries, sealed", info, err)
	}
	ents, err := os.ReadDir(tmpl)
	if err != nil {
		b.Fatal(err)
	}
	type file struct {
		name string
		data []byte
		mode os.FileMode
	}
	var files []file
	oldest := tasks[0].GetFinishTime().AsTime()
	for _, e := range ents {
		p := filepath.Join(tmpl, e.Name())
		data, err := os.ReadFile(p)
		fi, serr := os.Stat(p)
		if err != nil || serr != nil {
			b.Fatal(err, serr)
		}
		files = append(files, file{e.Name(), data, fi.Mode().Perm()})
	}
	// A file takes at most 65000 links on ext4: one copy per linksPer.
	const linksPer = 50_000
	for k := range len(tasks)/linksPer + 1 {
		dir := fmt.Sprintf("%s-%d", tmpl, k)
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		for _, f := range files {
			p := filepath.Join(dir, f.name)
			if err := os.WriteFile(p, f.data, f.mode); err != nil {
				b.Fatal(err)
			}
			if err := os.Chtimes(p, oldest, oldest); err != nil {
				b.Fatal(err)
			}
		}
	}
	root := filepath.Join(d.StateDir, "logs")
	if err := os.MkdirAll(root, 0o700); err != nil {
		b.Fatal(err)
	}
	recent := time.Now().Add(-24 * time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(tasks); i += 4 {
				t := tasks[i]
				dir := filepath.Join(root, t.GetId())
				at := t.GetFinishTime().AsTime()
				err := os.Mkdir(dir, 0o700)
				for _, f := range files {
					if err != nil {
						break
					}
					p := filepath.Join(dir, f.name)
					if at.After(recent) {
						if err = os.WriteFile(p, f.data, f.mode); err == nil {
							err = os.Chtimes(p, at, at)
						}
					} else {
						err = os.Link(filepath.Join(fmt.Sprintf("%s-%d", tmpl, i/linksPer), f.name), p)
					}
				}
				if err == nil {
					err = os.Chtimes(dir, at, at)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// scaleStartFilled starts a pcnoded (no race detector: timings) on a database
// of n finished tasks, with their logs or without.
func scaleStartFilled(b *testing.B, n int, withLogs bool) *daemontest.Daemon {
	b.Helper()
	d := daemontest.Start(b, daemontest.Options{NoRace: true, LogLevel: "warn"})
	d.Stop(b)
	scaleFillFinished(b, d, n, withLogs)
	d.Restart(b)
	return d
}

// BenchmarkIntegrationList100k times ListTasks pages of 100 through the
// real gRPC API on a database of 100k finished tasks: the first page, a
// page deep in the listing (continued from a page token of the last
// thousand tasks), a page filtered by a label that every task carries, and
// one filtered by a label only the 100 oldest carry.
func BenchmarkIntegrationList100k(b *testing.B) {
	sz := scaleSizesNow()
	d := scaleStartFilled(b, sz.finished, false)
	ctx := b.Context()
	list := func(req *pcnodev1.ListTasksRequest) *pcnodev1.ListTasksResponse {
		resp, err := d.Client.Tasks.ListTasks(ctx, req)
		if err != nil {
			b.Fatalf("ListTasks(%v) = %v", req, err)
		}
		return resp
	}
	// The token of the page that ends 1000 tasks before the oldest: walk
	// there with pages of 1000, checking the order on the way.
	var deepToken string
	seen, last := 0, ""
	for tok := ""; ; {
		resp := list(&pcnodev1.ListTasksRequest{PageSize: 1000, PageToken: tok})
		for _, t := range resp.GetTasks() {
			if last != "" && t.GetId() >= last {
				b.Fatalf("ListTasks: %s after %s, want newest first", t.GetId(), last)
			}
			last = t.GetId()
		}
		seen += len(resp.GetTasks())
		if seen == sz.finished-1000 {
			deepToken = resp.GetNextPageToken()
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if seen != sz.finished || deepToken == "" {
		b.Fatalf("listing all pages gave %d tasks (deep token %q), want %d", seen, deepToken, sz.finished)
	}
	cases := []struct {
		name  string
		req   *pcnodev1.ListTasksRequest
		check func(*pcnodev1.ListTasksResponse) error
	}{
		{"list first page", &pcnodev1.ListTasksRequest{PageSize: 100}, nil},
		{"list deep page", &pcnodev1.ListTasksRequest{PageSize: 100, PageToken: deepToken}, nil},
		{"list label page", &pcnodev1.ListTasksRequest{PageSize: 100, Labels: map[string]string{"project": "demo"}}, nil},
		{"list rare label page", &pcnodev1.ListTasksRequest{PageSize: 100, Labels: map[string]string{"dag": "run-0"}},
			func(resp *pcnodev1.ListTasksResponse) error {
				if resp.GetNextPageToken() != "" {
					return fmt.Errorf("a next page token after the 100 tasks of dag run-0")
				}
				return nil
			}},
	}
	for _, c := range cases {
		var l scaleLatencies
		for range b.N * sz.calls {
			start := time.Now()
			resp := list(c.req)
			l = append(l, time.Since(start))
			if n := len(resp.GetTasks()); n != 100 {
				b.Fatalf("%s: %d tasks, want 100", c.name, n)
			}
			for _, t := range resp.GetTasks() {
				for k, v := range c.req.GetLabels() {
					if t.GetSpec().GetLabels()[k] != v {
						b.Fatalf("%s: task %s without label %s=%s", c.name, t.GetId(), k, v)
					}
				}
				if !scaleIsFinal(t.GetState()) {
					b.Fatalf("%s: task %s is %v, want a final state", c.name, t.GetId(), t.GetState())
				}
			}
			if c.check != nil {
				if err := c.check(resp); err != nil {
					b.Fatalf("%s: %v", c.name, err)
				}
			}
		}
		scalePrintBound(b, fmt.Sprintf("%s (%d finished)", c.name, sz.finished), strings.ReplaceAll(c.name, " ", "-"), l, scaleListBound)
	}
}

func scaleIsFinal(s pcnodev1.TaskState) bool {
	switch s {
	case pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskState_TASK_STATE_CANCELLED:
		return true
	}
	return false
}

// BenchmarkIntegrationRestart100k times pcnoded's start on a database of
// 100k finished tasks, each with its sealed log on disk (a sixth of them
// written within the last day), after SIGKILL and after SIGTERM: from the exec of
// the binary until the gRPC health service says SERVING and GetNode
// answers. pcnoded serves only once Start has recovered the tasks (with
// containerd up, recovery runs before the listener serves), so SERVING is
// "recovery done". Polled every 2 ms.
func BenchmarkIntegrationRestart100k(b *testing.B) {
	sz := scaleSizesNow()
	d := scaleStartFilled(b, sz.finished, true)
	bin := daemontest.BinaryFor(b, daemontest.Build{})
	runs := 5
	if os.Getenv("PCNODE_BENCH_CI") != "" {
		runs = 2
	}
	d.Kill(b)
	var kill, term scaleLatencies
	for i := range runs * b.N * 2 {
		byKill := i%2 == 0
		took, stop := scaleStartTimed(b, bin, d)
		if byKill {
			kill = append(kill, took)
		} else {
			term = append(term, took)
		}
		stop(byKill)
	}
	// Once more, to see how long the check of the recent logs takes in the
	// background after the start (it logs when it is done).
	_, stop := scaleStartTimed(b, bin, d)
	checked := scaleWaitLogLine(b, filepath.Join(d.Dir, "timed-starts.log"), "checked the logs of the tasks finished within a day", 3*time.Minute)
	stop(false)
	fmt.Printf("after a start (%d finished): %s\n", sz.finished, checked)
	d.Restart(b) // the harness's own process again, for its clean up
	resp, err := d.Client.Tasks.ListTasks(b.Context(), &pcnodev1.ListTasksRequest{PageSize: 1})
	if err != nil || len(resp.GetTasks()) != 1 {
		b.Fatalf("ListTasks after the restarts = %v, %v: want one task", resp, err)
	}
	for _, r := range []struct {
		name string
		l    scaleLatencies
	}{{"restart after SIGKILL", kill}, {"restart after SIGTERM", term}} {
		p50 := r.l.quantile(0.5)
		fmt.Printf("%s (%d finished): median %.0f ms, max %.0f ms over %d starts; bound %.0f ms: ratio %.3f\n",
			r.name, sz.finished, scaleMS(p50), scaleMS(slices.Max(r.l)), len(r.l), scaleMS(scaleRestartBound), float64(p50)/float64(scaleRestartBound))
		b.ReportMetric(scaleMS(p50), strings.ReplaceAll(r.name, " ", "-")+"-p50-ms")
	}
}

// scaleStartTimed starts bin on d's configuration and returns how long it took
// to serve, and a function that stops it (SIGKILL or SIGTERM).
func scaleStartTimed(b *testing.B, bin string, d *daemontest.Daemon) (time.Duration, func(kill bool)) {
	b.Helper()
	logf, err := os.OpenFile(filepath.Join(d.Dir, "timed-starts.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config", d.ConfigPath, "--log-level", "info")
	cmd.Stdout, cmd.Stderr = logf, logf
	fmt.Fprintln(logf, scaleStartMark, time.Now().Format(time.RFC3339Nano))
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func(kill bool) {
		sig := syscall.SIGTERM
		if kill {
			sig = syscall.SIGKILL
		}
		_ = cmd.Process.Signal(sig)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			b.Fatalf("pcnoded did not exit within 30 s of %v", sig)
		}
	}
	deadline := start.Add(time.Minute)
	for {
		select {
		case err := <-exited:
			b.Fatalf("pcnoded exited while starting: %v (log %s)", err, logf.Name())
		default:
		}
		if scaleServing(d.Socket) {
			return time.Since(start), stop
		}
		if time.Now().After(deadline) {
			stop(true)
			b.Fatalf("pcnoded not serving a minute after its start (log %s)", logf.Name())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// scaleStartMark begins the log of each start of scaleStartTimed.
const scaleStartMark = "==== timed start"

// scaleWaitLogLine waits for a line of path holding want, after the last
// scaleStartMark, and returns it.
func scaleWaitLogLine(b *testing.B, path, want string, timeout time.Duration) string {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i := len(lines) - 1; i >= 0 && !strings.HasPrefix(lines[i], scaleStartMark); i-- {
			if strings.Contains(lines[i], want) {
				return strings.TrimSpace(lines[i])
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("no %q in %s within %v", want, path, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scaleServing reports whether the daemon on socket answers health SERVING
// and a GetNode of a node that admits tasks. A new connection each time:
// a client's reconnect backoff would blur the figure.
func scaleServing(socket string) bool {
	if _, err := os.Stat(socket); err != nil {
		return false
	}
	cc, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return false
	}
	_, err = pcnodev1.NewNodeServiceClient(cc).GetNode(ctx, &pcnodev1.GetNodeRequest{})
	return err == nil
}

// BenchmarkIntegrationGetNodeUnderLoad times GetNode while 10k tasks are
// queued (max_concurrent is reached by long-running tasks, so they wait)
// and 100 followers stream the running tasks' logs, which keep writing.
// The queued tasks are submitted through the API, 16 at a time; GetNode
// is also timed while they are.
func BenchmarkIntegrationGetNodeUnderLoad(b *testing.B) {
	sz := scaleSizesNow()
	d := daemontest.Start(b, daemontest.Options{NoRace: true, LogLevel: "warn", Configure: func(c *config.Config) {
		c.Resources.MaxConcurrent = sz.running
		c.Streams.MaxPerClient = 256
		c.Streams.MaxTotal = 512
	}})
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	img := d.ImportImage(b, testimage.Image{}).GetName()
	// Long tasks that write 2 KiB every 400 ms for over two minutes (the
	// spec's size allows no more steps), then sleep.
	steps := strings.Repeat("write-stdout 2Ki -- sleep 0.4 -- ", 350) + "sleep forever"
	var running []string
	for i := range sz.running {
		t := d.Submit(b, &pcnodev1.TaskSpec{
			Name: fmt.Sprint("writer ", i), Image: img,
			Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "steps"},
			Env:      []*pcnodev1.EnvVar{{Name: "PCTEST_STEPS", Value: steps}},
		})
		running = append(running, t.GetId())
	}
	for _, id := range running {
		d.WaitState(b, id, pcnodev1.TaskState_TASK_STATE_RUNNING, time.Minute)
	}
	// The followers, spread over the running tasks and four connections.
	var conns []pcnodev1.TaskServiceClient
	for range 4 {
		cc, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cc.Close() })
		conns = append(conns, pcnodev1.NewTaskServiceClient(cc))
	}
	var (
		fwg      sync.WaitGroup
		mu       sync.Mutex
		received = make([]int, sz.followers)
		ferrs    []error
	)
	for i := range sz.followers {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			s, err := conns[i%len(conns)].StreamLogs(ctx, &pcnodev1.StreamLogsRequest{TaskId: running[i%len(running)], Follow: true})
			if err == nil {
				for {
					var resp *pcnodev1.StreamLogsResponse
					if resp, err = s.Recv(); err != nil {
						break
					}
					mu.Lock()
					received[i] += len(resp.GetEntries())
					mu.Unlock()
				}
			}
			if ctx.Err() == nil {
				mu.Lock()
				ferrs = append(ferrs, fmt.Errorf("follower %d: %w", i, err))
				mu.Unlock()
			}
		}()
	}
	// GetNode goes over a connection of its own, as an operator's or a
	// scheduler's would, not behind the submitters' calls.
	ncc, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer ncc.Close()
	nodes := pcnodev1.NewNodeServiceClient(ncc)
	// The queue: tasks that fit the node but wait for max_concurrent.
	start := time.Now()
	var (
		swg   sync.WaitGroup
		next  = make(chan int)
		serrs = make(chan error, 16)
	)
	for range 16 {
		swg.Add(1)
		go func() {
			defer swg.Done()
			for i := range next {
				_, err := d.Client.Tasks.SubmitTask(ctx, &pcnodev1.SubmitTaskRequest{Spec: &pcnodev1.TaskSpec{
					Name: fmt.Sprint("queued ", i), Image: img,
					Template:       &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "steps"},
					Env:            []*pcnodev1.EnvVar{{Name: "PCTEST_STEPS", Value: "exit 0"}},
					Labels:         map[string]string{"batch": "scale", "dag": fmt.Sprint("run-", i/100)},
					StartupTimeout: durationpb.New(time.Hour),
				}})
				if err != nil {
					select {
					case serrs <- fmt.Errorf("SubmitTask %d: %w", i, err):
					default:
					}
				}
			}
		}()
	}
	// GetNode meanwhile too: every submission passes the scheduler.
	var during scaleLatencies
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			t0 := time.Now()
			if _, err := nodes.GetNode(ctx, &pcnodev1.GetNodeRequest{}); err != nil {
				select {
				case serrs <- fmt.Errorf("GetNode while submitting: %w", err):
				default:
				}
				return
			}
			during = append(during, time.Since(t0))
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	for i := range sz.queued {
		next <- i
	}
	close(next)
	swg.Wait()
	close(stopSampling)
	<-sampled
	select {
	case err := <-serrs:
		b.Fatal(err)
	default:
	}
	fmt.Printf("submitted %d queued tasks in %.1f s (16 submitters)\n", sz.queued, time.Since(start).Seconds())

	var l scaleLatencies
	for range b.N * max(sz.calls, 200) {
		t0 := time.Now()
		resp, err := nodes.GetNode(ctx, &pcnodev1.GetNodeRequest{})
		l = append(l, time.Since(t0))
		if err != nil {
			b.Fatalf("GetNode = %v", err)
		}
		if n := resp.GetNode(); n.GetQueuedTasks() != int32(sz.queued) || n.GetRunningTasks() != int32(sz.running) {
			b.Fatalf("GetNode: %d queued, %d running; want %d and %d", n.GetQueuedTasks(), n.GetRunningTasks(), sz.queued, sz.running)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	errs, got := slices.Clone(ferrs), slices.Clone(received)
	mu.Unlock()
	if len(errs) > 0 {
		b.Fatalf("%d followers failed, first: %v", len(errs), errs[0])
	}
	for i, n := range got {
		if n == 0 {
			b.Fatalf("follower %d received no log entry", i)
		}
	}
	scalePrintBound(b, fmt.Sprintf("GetNode while %d tasks are submitted (%d followers)", sz.queued, sz.followers), "getnode-submitting", during, scaleGetNodeBound)
	scalePrintBound(b, fmt.Sprintf("GetNode under load (%d queued, %d followers)", sz.queued, sz.followers), "getnode", l, scaleGetNodeBound)
	cancel()
	fwg.Wait()
}
