package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/hostpath"
	"github.com/pcnode/pcnode/daemon/logs"
	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

const testExe = "/usr/local/bin/pcnoded"

// testDaemon is a Daemon with configuration and a host path policy over a
// fresh data root holding the directories named in dirs; nothing else.
func testDaemon(t *testing.T, dirs ...string) (*Daemon, string) {
	t.Helper()
	root := t.TempDir()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pol, err := hostpath.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	root = pol.DataRoots[0] // resolved
	return &Daemon{
		cfg:      config.DefaultConfig(),
		paths:    pol,
		exe:      testExe,
		logsRoot: filepath.Join(t.TempDir(), "logs"),
	}, root
}

func gpuAssignment(uuids ...string) sched.Assignment {
	a := sched.Assignment{ID: "t1"}
	for i, u := range uuids {
		a.GPUs = append(a.GPUs, sched.GPU{Index: i, UUID: u, NUMANode: -1, Health: sched.Healthy})
	}
	a.Resources.GPUs = len(uuids)
	return a
}

func TestContainerSpec(t *testing.T) {
	d, root := testDaemon(t, "in", "out", "out2")
	task := &pcnodev1.Task{
		Id: "t1",
		Spec: &pcnodev1.TaskSpec{
			Image:          "registry.example.org/pc:1",
			Network:        pcnodev1.NetworkMode_NETWORK_MODE_HOST,
			ReadOnlyRootfs: true,
			User:           "1000:100",
			PidsLimit:      64,
			// The spec's env, command and resources are not used: the
			// instance is the resolved task.
			Env:     []*pcnodev1.EnvVar{{Name: "FROM_SPEC", Value: "1"}},
			Command: []string{"spec-command"},
		},
		Instance: &pcnodev1.TaskInstance{
			Env: []*pcnodev1.EnvVar{
				{Name: "A", Value: "1"},
				{Name: "NVIDIA_VISIBLE_DEVICES", Value: "all"},
				{Name: "B", Value: "x=y"},
			},
			Command: []string{"python3", "-m", "seg"},
			Inputs:  []*pcnodev1.Mount{{Name: "in", HostPath: filepath.Join(root, "in"), MountedPath: "/data/in"}},
			Outputs: []*pcnodev1.Mount{
				{Name: "out", HostPath: filepath.Join(root, "out"), MountedPath: "/data/out"},
				{Name: "out2", HostPath: filepath.Join(root, "out2"), MountedPath: "/data/out2", ReadOnly: true},
			},
			Resources: &pcnodev1.ResourceRequirements{
				Requests: &pcnodev1.ResourceList{MemoryBytes: 1 << 30, CpuMillis: 500},
				Limits:   &pcnodev1.ResourceList{MemoryBytes: 2 << 30, CpuMillis: 1500},
			},
		},
	}
	// Mounts come from the staging mounts start makes (stageChannels),
	// never from the instance's paths: containerSpec leaves them out.
	var mounts []runtime.Mount
	for _, tc := range []struct {
		name  string
		alloc sched.Assignment
		want  runtime.ContainerSpec
	}{
		{"no GPUs", sched.Assignment{ID: "t1"}, runtime.ContainerSpec{
			ID: "t1", Image: "registry.example.org/pc:1", Args: []string{"python3", "-m", "seg"},
			Env:              []string{"A=1", "B=x=y", "NVIDIA_VISIBLE_DEVICES=void"},
			Mounts:           mounts,
			MemoryLimitBytes: 2 << 30, MemoryReservationBytes: 1 << 30, CPUQuotaMillis: 1500,
			PidsLimit: 64, NetworkHost: true, ReadOnlyRootfs: true, User: "1000:100",
		}},
		{"two GPUs", gpuAssignment("GPU-aaaa", "GPU-bbbb"), runtime.ContainerSpec{
			ID: "t1", Image: "registry.example.org/pc:1", Args: []string{"python3", "-m", "seg"},
			Env:              []string{"A=1", "B=x=y", "NVIDIA_VISIBLE_DEVICES=GPU-aaaa,GPU-bbbb"},
			Mounts:           mounts,
			MemoryLimitBytes: 2 << 30, MemoryReservationBytes: 1 << 30, CPUQuotaMillis: 1500,
			PidsLimit: 64, NetworkHost: true, ReadOnlyRootfs: true, User: "1000:100",
			CDIDevices: []string{"nvidia.com/gpu=GPU-aaaa", "nvidia.com/gpu=GPU-bbbb"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.containerSpec(task, tc.alloc)
			if err != nil {
				t.Fatalf("containerSpec(%q) error = %v", tc.name, err)
			}
			if !strings.HasPrefix(got.LogURI, "binary://"+testExe+"?") || !strings.Contains(got.LogURI, "t1") {
				t.Errorf("containerSpec(%q) LogURI = %q, want binary://%s?… naming the task's log directory", tc.name, got.LogURI, testExe)
			}
			got.LogURI = ""
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("containerSpec(%q) (-want +got):\n%s", tc.name, diff)
			}
		})
	}
}

func TestContainerSpecLimits(t *testing.T) {
	withPids := func(n int64) config.Config { c := config.DefaultConfig(); c.Tasks.PidsLimit = n; return c }
	for _, tc := range []struct {
		name      string
		cfg       config.Config
		cpuLimit  int64
		specPids  int64
		wantQuota int64
		wantPids  int64
	}{
		{name: "no cpu limit", cfg: config.DefaultConfig(), wantQuota: 0, wantPids: 4096},
		{name: "1 milli floored", cfg: config.DefaultConfig(), cpuLimit: 1, wantQuota: 10, wantPids: 4096},
		{name: "9 milli floored", cfg: config.DefaultConfig(), cpuLimit: 9, wantQuota: 10, wantPids: 4096},
		{name: "10 milli", cfg: config.DefaultConfig(), cpuLimit: 10, wantQuota: 10, wantPids: 4096},
		{name: "2 cores", cfg: config.DefaultConfig(), cpuLimit: 2000, wantQuota: 2000, wantPids: 4096},
		{name: "spec pids", cfg: config.DefaultConfig(), specPids: 10, wantPids: 10},
		{name: "spec pids above config", cfg: withPids(100), specPids: 1000, wantPids: 1000},
		{name: "config pids", cfg: withPids(100), wantPids: 100},
		{name: "no pids limit", cfg: withPids(0), wantPids: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := testDaemon(t)
			d.cfg = tc.cfg
			task := &pcnodev1.Task{
				Id:   "t1",
				Spec: &pcnodev1.TaskSpec{Image: "img", PidsLimit: tc.specPids},
				Instance: &pcnodev1.TaskInstance{Resources: &pcnodev1.ResourceRequirements{
					Limits: &pcnodev1.ResourceList{CpuMillis: tc.cpuLimit},
				}},
			}
			got, err := d.containerSpec(task, sched.Assignment{ID: "t1"})
			if err != nil {
				t.Fatalf("containerSpec(%q) error = %v", tc.name, err)
			}
			if got.CPUQuotaMillis != tc.wantQuota || got.PidsLimit != tc.wantPids {
				t.Errorf("containerSpec(%q) cpu quota, pids = %d, %d, want %d, %d", tc.name, got.CPUQuotaMillis, got.PidsLimit, tc.wantQuota, tc.wantPids)
			}
			if got.NetworkHost || got.ReadOnlyRootfs || got.User != "" || len(got.Mounts) != 0 || len(got.CDIDevices) != 0 {
				t.Errorf("containerSpec(%q) = %+v, want no host network, writable rootfs, image user, no mounts or devices", tc.name, got)
			}
			if !cmp.Equal(got.Env, []string{"NVIDIA_VISIBLE_DEVICES=void"}) {
				t.Errorf("containerSpec(%q) env = %q, want only NVIDIA_VISIBLE_DEVICES=void", tc.name, got.Env)
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	dur := durationpb.New
	cfg := config.DefaultConfig()
	cfg.Tasks.StartupTimeout.Duration = 30 * time.Minute
	cfg.Tasks.ExecutionTimeout.Duration = 2 * time.Hour
	cfg.Tasks.StopGracePeriod.Duration = 10 * time.Second
	zero := config.DefaultConfig()
	zero.Tasks.StartupTimeout.Duration = 0
	zero.Tasks.ExecutionTimeout.Duration = 0
	zero.Tasks.StopGracePeriod.Duration = 0
	for _, tc := range []struct {
		name                          string
		cfg                           config.Config
		spec                          *pcnodev1.TaskSpec
		req                           *durationpb.Duration
		startup, execution, stopGrace time.Duration
	}{
		{name: "config", cfg: cfg, spec: &pcnodev1.TaskSpec{},
			startup: 30 * time.Minute, execution: 2 * time.Hour, stopGrace: 10 * time.Second},
		{name: "no spec", cfg: cfg,
			startup: 30 * time.Minute, execution: 2 * time.Hour, stopGrace: 10 * time.Second},
		{name: "spec", cfg: cfg, spec: &pcnodev1.TaskSpec{StartupTimeout: dur(time.Minute), ExecutionTimeout: dur(5 * time.Hour), StopGracePeriod: dur(time.Minute)},
			startup: time.Minute, execution: 5 * time.Hour, stopGrace: time.Minute},
		{name: "request over spec", cfg: cfg, spec: &pcnodev1.TaskSpec{StopGracePeriod: dur(time.Minute)}, req: dur(3 * time.Second),
			startup: 30 * time.Minute, execution: 2 * time.Hour, stopGrace: 3 * time.Second},
		{name: "request over config", cfg: cfg, spec: &pcnodev1.TaskSpec{}, req: dur(time.Hour),
			startup: 30 * time.Minute, execution: 2 * time.Hour, stopGrace: time.Hour},
		{name: "zero means unset", cfg: cfg, spec: &pcnodev1.TaskSpec{StartupTimeout: dur(0), ExecutionTimeout: dur(0), StopGracePeriod: dur(0)}, req: dur(0),
			startup: 30 * time.Minute, execution: 2 * time.Hour, stopGrace: 10 * time.Second},
		{name: "negative means unset", cfg: cfg, spec: &pcnodev1.TaskSpec{StartupTimeout: dur(-1), ExecutionTimeout: dur(-1), StopGracePeriod: dur(-1)}, req: dur(-1),
			startup: 30 * time.Minute, execution: 2 * time.Hour, stopGrace: 10 * time.Second},
		{name: "none configured", cfg: zero, spec: &pcnodev1.TaskSpec{}},
		{name: "spec without config", cfg: zero, spec: &pcnodev1.TaskSpec{StartupTimeout: dur(time.Second), ExecutionTimeout: dur(time.Second), StopGracePeriod: dur(time.Second)},
			startup: time.Second, execution: time.Second, stopGrace: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Daemon{cfg: tc.cfg}
			task := &pcnodev1.Task{Spec: tc.spec}
			if got := d.startupTimeout(task); got != tc.startup {
				t.Errorf("startupTimeout(%q) = %v, want %v", tc.name, got, tc.startup)
			}
			if got := d.executionTimeout(task); got != tc.execution {
				t.Errorf("executionTimeout(%q) = %v, want %v", tc.name, got, tc.execution)
			}
			if got := d.gracePeriod(task, tc.req); got != tc.stopGrace {
				t.Errorf("gracePeriod(%q) = %v, want %v", tc.name, got, tc.stopGrace)
			}
		})
	}
}

func TestStartupDeadline(t *testing.T) {
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	cfg := config.DefaultConfig()
	cfg.Tasks.StartupTimeout.Duration = 30 * time.Minute
	zero := config.DefaultConfig()
	zero.Tasks.StartupTimeout.Duration = 0
	for _, tc := range []struct {
		name string
		cfg  config.Config
		spec *pcnodev1.TaskSpec
		want time.Time
	}{
		{"config", cfg, &pcnodev1.TaskSpec{}, created.Add(30 * time.Minute)},
		{"spec", cfg, &pcnodev1.TaskSpec{StartupTimeout: durationpb.New(time.Hour)}, created.Add(time.Hour)},
		{"none", zero, &pcnodev1.TaskSpec{}, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Daemon{cfg: tc.cfg}
			got := d.startupDeadline(&pcnodev1.Task{Spec: tc.spec, CreateTime: timestamppb.New(created)})
			if !got.Equal(tc.want) {
				t.Errorf("startupDeadline(%q) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}

// stepDaemon is testDaemon with what the lifecycle's steps need: a real
// bbolt store in t.TempDir() (consistency-checked when t ends), rt as the
// runtime, a scheduler, the event broker and node watch. dirs are created
// under the data root, which it returns.
func stepDaemon(t *testing.T, rt *fakeRuntime, dirs ...string) (*Daemon, string) {
	t.Helper()
	d, root := testDaemon(t, dirs...)
	st, err := store.Open(filepath.Join(t.TempDir(), "pcnode.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Check(context.Background()); err != nil {
			t.Errorf("store check: %v", err)
		}
		st.Close()
	})
	s, err := sched.New(sched.Config{Allocatable: sched.Resources{MilliCPU: 8000, MemoryBytes: 8 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	if d.staging, err = hostpath.NewStaging(filepath.Join(t.TempDir(), "staging")); err != nil {
		t.Fatal(err)
	}
	d.log = slog.New(slog.DiscardHandler)
	d.store, d.rt, d.sched = st, rt, s
	d.gpus = &gpuNode{}
	d.events, d.node = newBroker(), newNodeWatch()
	d.startTime = time.Now()
	d.runners, d.queued = map[string]*runner{}, map[string]*queuedTask{}
	d.wake = make(chan struct{}, 1)
	if err := os.MkdirAll(d.logsRoot, 0o700); err != nil {
		t.Fatal(err)
	}
	return d, root
}

const stepImage = "registry.example.org/pc:1"

// stepTask stores a QUEUED task of stepImage resolved at submit, with
// output channels named by outs (directories below root, mounted at
// /data/<name>), and returns it.
func stepTask(t *testing.T, d *Daemon, root string, outs ...string) *pcnodev1.Task {
	t.Helper()
	task := &pcnodev1.Task{
		Id:         store.NewID(time.Now()),
		State:      pcnodev1.TaskState_TASK_STATE_QUEUED,
		CreateTime: timestamppb.Now(),
		Spec:       &pcnodev1.TaskSpec{Image: stepImage},
		Instance:   &pcnodev1.TaskInstance{Command: []string{"/pctest", "exit", "3"}},
	}
	for _, o := range outs {
		task.Instance.Outputs = append(task.Instance.Outputs, &pcnodev1.Mount{Name: o, HostPath: filepath.Join(root, o), MountedPath: "/data/" + o})
	}
	got, _, err := d.store.CreateTask(context.Background(), task, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// stepRunner is a runner of task id on d, as launch makes one; it is
// detached when t ends.
func stepRunner(t *testing.T, d *Daemon, id string) *runner {
	t.Helper()
	r := d.newRunner(id, sched.Assignment{ID: id}, nil)
	t.Cleanup(r.cancel)
	return r
}

// getTask reads task id from d's store.
func getTask(t *testing.T, d *Daemon, id string) *pcnodev1.Task {
	t.Helper()
	task, err := d.store.GetTask(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// waitFinal waits up to 10 s for task id to reach a final state.
func waitFinal(t *testing.T, d *Daemon, id string) *pcnodev1.Task {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		task := getTask(t, d, id)
		if IsFinal(task.GetState()) {
			return task
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s still %v after 10s", id, task.GetState())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitRunnersDone waits until d has no runner left.
func waitRunnersDone(t *testing.T, d *Daemon) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d.mu.Lock()
		n := len(d.runners)
		d.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d runners still there after 10s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wantState fails t unless task is in state with reason.
func wantState(t *testing.T, task *pcnodev1.Task, state pcnodev1.TaskState, reason pcnodev1.TaskReason) {
	t.Helper()
	if task.GetState() != state || task.GetReason() != reason {
		t.Errorf("task %s = %v/%v (%q), want %v/%v", task.GetId(), task.GetState(), task.GetReason(), task.GetMessage(), state, reason)
	}
}

// launchTask hands task id to a runner as launch does and returns it.
func launchTask(t *testing.T, d *Daemon, id string) *runner {
	t.Helper()
	r := d.newRunner(id, sched.Assignment{ID: id}, nil)
	d.mu.Lock()
	d.runners[id] = r
	d.mu.Unlock()
	t.Cleanup(r.cancel)
	go r.run()
	return r
}

// TestRun runs the whole list of steps: the task ends FAILED with its exit
// code, its process was started once, and its container is gone and its
// log sealed when the runner has ended.
func TestRun(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt, "out")
	task := stepTask(t, d, root, "out")
	rt.autoExit[task.GetId()] = runtime.ExitStatus{Code: 3}
	r := launchTask(t, d, task.GetId())
	<-r.done
	got := getTask(t, d, task.GetId())
	wantState(t, got, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT)
	if got.GetExitCode() != 3 || got.GetMessage() != "exited 3" || len(got.GetOutputs()) != 1 {
		t.Errorf("task = exit %d %q outputs %v, want exit 3, \"exited 3\", one output", got.GetExitCode(), got.GetMessage(), got.GetOutputs())
	}
	if n := rt.count("Start", task.GetId()); n != 1 {
		t.Errorf("Start called %d times, want 1", n)
	}
	if st := rt.state(task.GetId()); st != "" {
		t.Errorf("container %q after the run, want deleted", st)
	}
	if info, err := logs.Stat(d.taskLogDir(task.GetId())); err != nil || !info.Ended {
		t.Errorf("log %+v, %v after the run, want sealed", info, err)
	}
	// The order of the durable effects: final state before the delete.
	rt.mu.Lock()
	calls := slices.Clone(rt.calls)
	rt.mu.Unlock()
	if i, j := slices.Index(calls, "Usage "+task.GetId()), slices.Index(calls, "Delete "+task.GetId()); i < 0 || j < i {
		t.Errorf("runtime calls %q: want Usage, then Delete", calls)
	}
}

// TestRecover resumes each unfinished state the store and containerd can
// show together, as recover.go lists them.
func TestRecover(t *testing.T) {
	exit3 := runtime.ExitStatus{Code: 3}
	for _, tc := range []struct {
		name      string
		state     pcnodev1.TaskState
		container runtime.State // "": none
		final     bool          // the task reaches a final state by itself
		reason    pcnodev1.TaskReason
		queued    bool
	}{
		{name: "queued", state: pcnodev1.TaskState_TASK_STATE_QUEUED, queued: true},
		{name: "preparing, no container", state: pcnodev1.TaskState_TASK_STATE_PREPARING, queued: true},
		{name: "preparing, created container", state: pcnodev1.TaskState_TASK_STATE_PREPARING, container: runtime.StateCreated, queued: true},
		{name: "preparing, exited container", state: pcnodev1.TaskState_TASK_STATE_PREPARING, container: runtime.StateStopped, final: true, reason: pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT},
		{name: "running, exited container", state: pcnodev1.TaskState_TASK_STATE_RUNNING, container: runtime.StateStopped, final: true, reason: pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT},
		{name: "running, no container", state: pcnodev1.TaskState_TASK_STATE_RUNNING, final: true, reason: pcnodev1.TaskReason_TASK_REASON_LOST},
		{name: "running, container without a task", state: pcnodev1.TaskState_TASK_STATE_RUNNING, container: runtime.StateCreated, final: true, reason: pcnodev1.TaskReason_TASK_REASON_LOST},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newFakeRuntime(stepImage)
			d, root := stepDaemon(t, rt)
			task := stepTask(t, d, root)
			id := task.GetId()
			if _, err := d.update(context.Background(), id, func(t *pcnodev1.Task) {
				t.State = tc.state
				if tc.state != pcnodev1.TaskState_TASK_STATE_QUEUED {
					t.Allocation = &pcnodev1.Allocation{CpuMillis: 100}
				}
				if tc.state == pcnodev1.TaskState_TASK_STATE_RUNNING {
					t.StartTime = timestamppb.Now()
				}
			}); err != nil {
				t.Fatal(err)
			}
			if tc.container != "" {
				rt.addContainer(id, tc.container, exit3)
			}
			if err := d.recover(context.Background()); err != nil {
				t.Fatalf("recover() = %v", err)
			}
			if tc.queued {
				got := getTask(t, d, id)
				if got.GetState() != pcnodev1.TaskState_TASK_STATE_QUEUED || d.queued[id] == nil {
					t.Errorf("after recover: %v, queued %v; want QUEUED and handed to the scheduler", got.GetState(), d.queued[id] != nil)
				}
				if st := rt.state(id); st != "" {
					t.Errorf("container %q after recover, want none (a created-only one is deleted)", st)
				}
				return
			}
			got := waitFinal(t, d, id)
			wantState(t, got, pcnodev1.TaskState_TASK_STATE_FAILED, tc.reason)
			if tc.reason == pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT && got.GetExitCode() != 3 {
				t.Errorf("exit code %d, want 3", got.GetExitCode())
			}
			waitRunnersDone(t, d)
			if st := rt.state(id); st != "" {
				t.Errorf("container %q at the end, want deleted", st)
			}
			if info, err := logs.Stat(d.taskLogDir(id)); err != nil || !info.Ended {
				t.Errorf("log %+v, %v at the end, want sealed", info, err)
			}
			if n := rt.count("Start", id); n != 0 {
				t.Errorf("Start called %d times by recovery, want 0", n)
			}
		})
	}
}

// TestDetachDuringCollect: a runner detached after the exit (shutdown)
// leaves the task RUNNING with its stopped container, and the next start
// collects it as if nothing had happened.
func TestDetachDuringCollect(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	task := stepTask(t, d, root)
	id := task.GetId()
	inCollect := make(chan struct{})
	var once sync.Once
	rt.usageHook = func(ctx context.Context, _ string) {
		once.Do(func() {
			close(inCollect)
			<-ctx.Done() // reading usage until the detach
		})
	}
	rt.autoExit[id] = runtime.ExitStatus{Code: 3}
	r := launchTask(t, d, id)
	<-inCollect
	start := time.Now()
	r.detach()
	if el := time.Since(start); el > time.Second {
		t.Errorf("detach took %v, want it prompt", el)
	}
	if got := getTask(t, d, id); got.GetState() != pcnodev1.TaskState_TASK_STATE_RUNNING {
		t.Fatalf("task after detach = %v, want RUNNING", got.GetState())
	}
	if st := rt.state(id); st != runtime.StateStopped {
		t.Fatalf("container after detach = %q, want stopped", st)
	}
	// The next start.
	if err := d.recover(context.Background()); err != nil {
		t.Fatalf("recover() = %v", err)
	}
	got := waitFinal(t, d, id)
	wantState(t, got, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT)
	waitRunnersDone(t, d)
	if n := rt.count("Start", id); n != 1 {
		t.Errorf("Start called %d times, want 1", n)
	}
}
