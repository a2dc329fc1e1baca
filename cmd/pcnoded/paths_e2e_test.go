package main

// Acceptance tests of issue 7's host path part: every attack on a host path
// between submit and use, tried through the real gRPC API against pcnoded
// and containerd, and shown to fail. Decoy directories hold marker files
// and are compared, entry by entry and byte by byte, before and after: a
// decoy that changed, or whose marker a container saw, is an escape.
//
// What a task meets when its host path was swapped for a symlink after
// submit: it fails with START_ERROR naming the channel, the field and the
// symlink, and nothing is created, emptied or mounted through the symlink.
// (The daemon never repairs the path: removing what someone put there
// would be an action on their behalf.)

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// pathsSpec runs /pctest with args in an inline template whose input "in"
// is mounted at /data/in and output "out" at /data/out (each only when its
// host path is not empty).
func pathsSpec(img, name, in, out string, args ...string) *pcnodev1.TaskSpec {
	tmpl := &pcnodev1.TaskTemplate{Identifier: "paths", Command: append([]string{"/pctest"}, args...)}
	s := &pcnodev1.TaskSpec{
		Name:     name,
		Image:    img,
		Template: &pcnodev1.TaskSpec_InlineTemplate{InlineTemplate: tmpl},
		Labels:   map[string]string{"test": "paths"},
	}
	if in != "" {
		tmpl.Inputs = append(tmpl.Inputs, &pcnodev1.ChannelTemplate{Name: "in", MountedPath: "/data/in"})
		s.Inputs = append(s.Inputs, e2eBind("in", in))
	}
	if out != "" {
		tmpl.Outputs = append(tmpl.Outputs, &pcnodev1.ChannelTemplate{Name: "out", MountedPath: "/data/out"})
		s.Outputs = append(s.Outputs, e2eBind("out", out))
	}
	return s
}

// decoy is a directory tree with marker files that nothing may read,
// write or delete.
type decoy struct {
	dir    string
	marker string // a name unique to this decoy, in every marker file's name
	want   map[string]string
}

// newDecoy fills dir (created) with marker files, at the top and in the
// subdirectories subs (which also get one each).
func newDecoy(t *testing.T, dir string, subs ...string) *decoy {
	t.Helper()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	dc := &decoy{dir: dir, marker: "DECOY-" + hex.EncodeToString(rnd[:])}
	for _, sub := range append([]string{"."}, subs...) {
		p := filepath.Join(dir, sub)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, dc.marker+".txt"), []byte("marker of "+p+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dc.want = dc.snapshot(t)
	return dc
}

// snapshot lists every entry below the decoy, without following symlinks:
// directories as "dir", symlinks by target, files by content.
func (dc *decoy) snapshot(t *testing.T) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dc.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dc.dir, p)
		switch {
		case e.IsDir():
			got[rel] = "dir"
		case e.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[rel] = "symlink to " + target
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking decoy %s: %v", dc.dir, err)
	}
	return got
}

// check fails t if anything below the decoy was added, changed or removed.
func (dc *decoy) check(t *testing.T) {
	t.Helper()
	if diff := cmp.Diff(dc.want, dc.snapshot(t)); diff != "" {
		t.Errorf("decoy %s changed (-before +after):\n%s", dc.dir, diff)
	}
}

// pathsBlocker starts a task that holds the only slot (max_concurrent=1)
// until its returned release function cancels it.
func pathsBlocker(t *testing.T, d *daemontest.Daemon, img string) (release func()) {
	t.Helper()
	b := d.Submit(t, pathsSpec(img, "blocker", "", "", "echo", "ready", "--", "sleep", "60s"))
	d.WaitLog(t, b.GetId(), "ready\n", 0)
	return func() {
		t.Helper()
		if _, err := d.Client.Tasks.CancelTask(t.Context(), &pcnodev1.CancelTaskRequest{TaskId: b.GetId(), GracePeriod: durationpb.New(time.Second)}); err != nil {
			t.Fatalf("CancelTask(blocker) = %v", client.FromError(err))
		}
	}
}

// wantRefusedAtStart fails t unless task failed with START_ERROR before
// running, with a message holding every one of words.
func wantRefusedAtStart(t *testing.T, task *pcnodev1.Task, words ...string) {
	t.Helper()
	if task.GetState() != pcnodev1.TaskState_TASK_STATE_FAILED || task.GetReason() != pcnodev1.TaskReason_TASK_REASON_START_ERROR {
		t.Errorf("task %s ended %v/%v (%q), want FAILED/START_ERROR", task.GetId(), task.GetState(), task.GetReason(), task.GetMessage())
		return
	}
	if task.GetStartTime() != nil {
		t.Errorf("task %s has start_time %v: its container ran", task.GetId(), task.GetStartTime().AsTime())
	}
	for _, w := range words {
		if !strings.Contains(task.GetMessage(), w) {
			t.Errorf("task %s message %q does not say %q", task.GetId(), task.GetMessage(), w)
		}
	}
	t.Logf("refused at start: %s", task.GetMessage())
}

// swapToSymlink moves the directory p aside (to p+".orig") and puts a
// symlink to target in its place.
func swapToSymlink(t *testing.T, p, target string) {
	t.Helper()
	if err := os.Rename(p, p+".orig"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// TestIntegrationPathSwapWhileQueued: a queued task's output directory (or
// a parent of it) is replaced by a symlink after submit — to another data
// root directory, to the task's own input, to a directory outside every
// data root. The task fails with START_ERROR; the symlink's target keeps
// every file and gains none; nothing of it reaches a container.
func TestIntegrationPathSwapWhileQueued(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{NoRace: true, Configure: func(c *config.Config) {
		c.Resources.MaxConcurrent = 1
	}})
	img := e2eTestImage(t, d).GetName()
	root := d.DataRoots[0]
	outside := t.TempDir() // below no data root

	for _, tc := range []struct {
		name string
		// target returns the decoy the symlink will point at, given the
		// job directory with its in/ and out/.
		target func(t *testing.T, job string) *decoy
		// swapped is the directory replaced: "out" or "." (the job
		// directory itself, a parent of both channels).
		swapped string
	}{
		{name: "output to another data root directory", swapped: "out", target: func(t *testing.T, job string) *decoy {
			return newDecoy(t, filepath.Join(root, "other-"+filepath.Base(job)), "sub")
		}},
		{name: "output to the task's own input", swapped: "out", target: func(t *testing.T, job string) *decoy {
			return newDecoy(t, filepath.Join(job, "in"), "sub")
		}},
		{name: "output to outside the data roots", swapped: "out", target: func(t *testing.T, job string) *decoy {
			return newDecoy(t, filepath.Join(outside, filepath.Base(job)), "sub")
		}},
		{name: "parent to outside the data roots", swapped: ".", target: func(t *testing.T, job string) *decoy {
			// The decoy mirrors the job's layout, so that following the
			// symlink would find an in/ and an out/ there.
			return newDecoy(t, filepath.Join(outside, filepath.Base(job)+"-tree"), "in", "out")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := filepath.Join(root, strings.ReplaceAll(tc.name, " ", "-"))
			in := filepath.Join(job, "in")
			out := filepath.Join(job, "out")
			for _, p := range []string{in, out} {
				if err := os.MkdirAll(p, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(in, "input.txt"), []byte("input\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(out, "stale.txt"), []byte("stale\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			dc := tc.target(t, job)

			release := pathsBlocker(t, d, img)
			task := d.Submit(t, pathsSpec(img, "victim", in, out, "ls", "/data/in", "--", "write-file", "/data/out/result.bin", "1000"))
			if got := d.GetTask(t, task.GetId()).GetState(); got != pcnodev1.TaskState_TASK_STATE_QUEUED {
				t.Fatalf("victim is %v behind the blocker, want QUEUED", got)
			}
			swapped := filepath.Join(job, tc.swapped)
			swapToSymlink(t, swapped, dc.dir)
			release()

			final := d.WaitTask(t, task.GetId(), 0)
			dc.check(t)
			wantRefusedAtStart(t, final, "channel", "host_path", "symlink")
			if logs := daemontest.Output(d.TaskLogs(t, task.GetId()), pcnodev1.LogStream_LOG_STREAM_STDOUT); strings.Contains(string(logs), dc.marker) {
				t.Errorf("the task's container listed the decoy: %q", logs)
			}
			// The real output directory was neither emptied nor written.
			realOut := filepath.Join(job+".orig", "out")
			if tc.swapped == "out" {
				realOut = out + ".orig"
			}
			if _, err := os.Stat(filepath.Join(realOut, "stale.txt")); err != nil {
				t.Errorf("the real output's stale.txt: %v, want it kept (the task never started)", err)
			}
		})
	}
}

// TestIntegrationPathPlantedByContainer: a container writes a symlink into
// its output where a later queued task's output directory will be. The
// later task does not empty, write or mount the symlink's target.
func TestIntegrationPathPlantedByContainer(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{NoRace: true, Configure: func(c *config.Config) {
		c.Resources.MaxConcurrent = 1
	}})
	img := e2eTestImage(t, d).GetName()
	root := d.DataRoots[0]
	outsideDecoy := newDecoy(t, filepath.Join(t.TempDir(), "victim"), "sub")
	insideDecoy := newDecoy(t, filepath.Join(root, "victim"), "sub")

	// The planter copies its input, which holds the symlinks, into its
	// output: "copy" recreates symlinks without following them, so the
	// symlinks in shared/ are the container's.
	src := filepath.Join(root, "plant-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"next-out": outsideDecoy.dir, "next-in": insideDecoy.dir} {
		if err := os.Symlink(target, filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	shared := filepath.Join(root, "shared")

	release := pathsBlocker(t, d, img)
	planter := d.Submit(t, pathsSpec(img, "planter", src, shared, "copy", "/data/in", "/data/out"))
	// Both later tasks pass submit: shared/ does not exist yet.
	later := []*pcnodev1.Task{
		d.Submit(t, pathsSpec(img, "later-outside", "", filepath.Join(shared, "next-out"), "write-file", "/data/out/result.bin", "1000")),
		d.Submit(t, pathsSpec(img, "later-inside", "", filepath.Join(shared, "next-in"), "write-file", "/data/out/result.bin", "1000")),
	}
	release()

	p := d.WaitTask(t, planter.GetId(), 0)
	e2eWantEnd(t, p, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
	for _, name := range []string{"next-out", "next-in"} {
		if fi, err := os.Lstat(filepath.Join(shared, name)); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Fatalf("the planter did not leave a symlink at shared/%s: %v, %v", name, fi, err)
		}
	}
	var finals []*pcnodev1.Task
	for _, task := range later {
		finals = append(finals, d.WaitTask(t, task.GetId(), 0))
	}
	outsideDecoy.check(t)
	insideDecoy.check(t)
	for _, task := range finals {
		wantRefusedAtStart(t, task, "output channel", "symlink")
	}
}

// TestIntegrationPathManifestAfterSwap: an output directory replaced by a
// symlink while its task runs is not followed when the manifest is made
// (after the task is cancelled, which collects manifests as an exit does):
// no file of the symlink's target is listed (or read).
func TestIntegrationPathManifestAfterSwap(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{NoRace: true})
	img := e2eTestImage(t, d).GetName()
	root := d.DataRoots[0]
	dc := newDecoy(t, filepath.Join(t.TempDir(), "decoy"), "sub")
	out := filepath.Join(root, "job", "out")

	task := d.Submit(t, pathsSpec(img, "swapped-while-running", "", out,
		"write-file", "/data/out/result.bin", "1000", "--", "echo", "written", "--", "sleep", "60s"))
	d.WaitLog(t, task.GetId(), "written\n", 0)
	swapToSymlink(t, out, dc.dir)
	e2eCancel(t, d, task.GetId(), time.Second)
	final := d.GetTask(t, task.GetId())
	e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, final.GetExitCode())
	if !strings.Contains(final.GetMessage(), "output manifest") || !strings.Contains(final.GetMessage(), "symlink") {
		t.Errorf("message %q, want it to say the output manifest was refused for a symlink", final.GetMessage())
	}
	resp, err := d.Client.Tasks.GetTaskOutputs(t.Context(), &pcnodev1.GetTaskOutputsRequest{TaskId: task.GetId()})
	if err == nil {
		for _, m := range resp.GetManifests() {
			for _, f := range m.GetFiles() {
				if strings.Contains(f.GetPath(), "DECOY") {
					t.Errorf("manifest of %s lists the decoy's %s", m.GetName(), f.GetPath())
				}
			}
		}
	}
	dc.check(t)
	if _, err := os.Stat(filepath.Join(out+".orig", "result.bin")); err != nil {
		t.Errorf("the task's own output: %v", err)
	}
}

// TestIntegrationPathSwapRace swaps one component of the channels' host
// paths, in a tight loop, between a directory and a symlink to a decoy
// outside every data root (renameat2 RENAME_EXCHANGE: the name is always
// one or the other) while tasks are submitted and started. Every task
// either fails (at submit or at start) or runs with the real directories;
// no container lists the decoy's files, and the decoy is unchanged.
func TestIntegrationPathSwapRace(t *testing.T) {
	const (
		submitFor  = 15 * time.Second // then wait for what was submitted
		maxPending = 6
	)
	d := daemontest.Start(t, daemontest.Options{NoRace: true, Configure: func(c *config.Config) {
		c.Resources.MaxConcurrent = 4
	}})
	img := e2eTestImage(t, d).GetName()
	root := d.DataRoots[0]
	dc := newDecoy(t, filepath.Join(t.TempDir(), "decoy"), "in")
	race := filepath.Join(root, "race")
	alt := filepath.Join(root, "race.alt")
	if err := os.MkdirAll(filepath.Join(race, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(race, "in", "real-input.txt"), []byte("real\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dc.dir, alt); err != nil {
		t.Fatal(err)
	}

	var (
		swaps    atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		stopOnce sync.Once
	)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := unix.Renameat2(unix.AT_FDCWD, race, unix.AT_FDCWD, alt, unix.RENAME_EXCHANGE); err != nil {
				t.Errorf("RENAME_EXCHANGE: %v", err)
				return
			}
			swaps.Add(1)
			time.Sleep(20 * time.Microsecond)
		}
	})
	stopSwapping := func() {
		stopOnce.Do(func() {
			close(stop)
			wg.Wait()
			// Leave the real directory under its own name.
			if fi, err := os.Lstat(race); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				if err := unix.Renameat2(unix.AT_FDCWD, race, unix.AT_FDCWD, alt, unix.RENAME_EXCHANGE); err != nil {
					t.Error(err)
				}
			}
		})
	}
	t.Cleanup(stopSwapping) // also when the test fails half-way

	var (
		ids             []string
		refusedAtSubmit int
		deadline        = time.Now().Add(submitFor)
	)
	for n := 0; time.Now().Before(deadline); n++ {
		// Keep a few tasks queued so that starts happen all the time.
		for pending(t, d) >= maxPending && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		out := filepath.Join(race, fmt.Sprintf("out-%d", n))
		spec := pathsSpec(img, fmt.Sprintf("race-%d", n), filepath.Join(race, "in"), out,
			"ls", "/data/in", "--", "write-file", "/data/out/result.bin", "100")
		resp, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: spec})
		if status.Code(err) == codes.InvalidArgument {
			refusedAtSubmit++ // the check at submit saw the symlink
			continue
		}
		if err != nil {
			t.Fatalf("SubmitTask(%s) = %v", spec.GetName(), client.FromError(err))
		}
		ids = append(ids, resp.GetTask().GetId())
	}
	var finals []*pcnodev1.Task
	for _, id := range ids {
		finals = append(finals, d.WaitTask(t, id, 0))
	}
	stopSwapping()

	ran, refusedAtStart, escapes := 0, 0, 0
	for _, task := range finals {
		switch {
		case task.GetState() == pcnodev1.TaskState_TASK_STATE_SUCCEEDED:
			ran++
			stdout := string(daemontest.Output(d.TaskLogs(t, task.GetId()), pcnodev1.LogStream_LOG_STREAM_STDOUT))
			if strings.Contains(stdout, dc.marker) || !strings.Contains(stdout, "real-input.txt") {
				escapes++
				t.Errorf("task %s listed %q as its input, want the real input only", task.GetId(), stdout)
			}
			out := task.GetInstance().GetOutputs()[0].GetHostPath()
			if _, err := os.Stat(filepath.Join(out, "result.bin")); err != nil {
				t.Errorf("task %s succeeded but its output %s holds no result.bin: %v", task.GetId(), out, err)
			}
		case task.GetReason() == pcnodev1.TaskReason_TASK_REASON_START_ERROR && task.GetStartTime() == nil:
			refusedAtStart++
			if !strings.Contains(task.GetMessage(), "symlink") {
				t.Errorf("task %s refused at start with %q, want the symlink named", task.GetId(), task.GetMessage())
			}
		default:
			t.Errorf("task %s ended %v/%v (%q), want SUCCEEDED or refused at start", task.GetId(), task.GetState(), task.GetReason(), task.GetMessage())
		}
	}
	before := t.Failed()
	dc.check(t)
	if !before && t.Failed() {
		escapes++ // the decoy itself changed
	}
	t.Logf("%d swaps; %d submits refused, %d tasks submitted: %d ran, %d refused at start; %d escapes",
		swaps.Load(), refusedAtSubmit, len(ids), ran, refusedAtStart, escapes)
	if swaps.Load() < 1000 || len(ids) < 10 || ran == 0 || refusedAtStart == 0 {
		t.Errorf("the race was not exercised: %d swaps, %d tasks, %d ran, %d refused at start; want ≥1000 swaps, ≥10 tasks, some of each",
			swaps.Load(), len(ids), ran, refusedAtStart)
	}
}

// pending counts the tasks that are queued or preparing.
func pending(t *testing.T, d *daemontest.Daemon) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := d.Client.Tasks.ListTasks(ctx, &pcnodev1.ListTasksRequest{States: []pcnodev1.TaskState{
		pcnodev1.TaskState_TASK_STATE_QUEUED, pcnodev1.TaskState_TASK_STATE_PREPARING,
	}})
	if err != nil {
		t.Fatalf("ListTasks = %v", client.FromError(err))
	}
	n := len(resp.GetTasks())
	return n
}

// TestIntegrationPathStagingSweptAtStart: staging mounts a crashed daemon
// left (the staging directory bound on itself, a task's mount below it) are
// unmounted when pcnoded starts, without touching the data they showed, and
// staging works afterwards.
func TestIntegrationPathStagingSweptAtStart(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{NoRace: true})
	img := e2eTestImage(t, d).GetName()
	d.Stop(t)

	dc := newDecoy(t, d.DataDir(t, "shown-by-a-stale-mount"), "sub")
	staging := filepath.Join(d.StateDir, "staging")
	stale := filepath.Join(staging, "01STALETASK", "out0")
	if err := unix.Mount(staging, staging, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(dc.dir, stale, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // only if the daemon left them
		_ = unix.Unmount(stale, unix.MNT_DETACH)
		_ = unix.Unmount(staging, unix.MNT_DETACH)
	})

	d.Restart(t)
	if m := pathsMountsBelow(t, staging); len(m) != 0 {
		t.Errorf("mounts below %s after the start: %q, want none", staging, m)
	}
	if entries, err := os.ReadDir(staging); err != nil || len(entries) != 0 {
		t.Errorf("%s after the start holds %v (%v), want nothing", staging, entries, err)
	}
	dc.check(t)

	out := d.DataPath("after-sweep")
	task, _ := d.Run(t, pathsSpec(img, "after-sweep", dc.dir, out, "copy", "/data/in", "/data/out"))
	e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
	if _, err := os.Stat(filepath.Join(out, dc.marker+".txt")); err != nil {
		t.Errorf("the task after the sweep did not copy its input: %v", err)
	}
	if m := pathsMountsBelow(t, staging); len(m) != 0 {
		t.Errorf("mounts below %s after a task started: %q, want none (staging mounts go once the container started)", staging, m)
	}
	dc.check(t)
}

// pathsMountsBelow lists the mount points at or below dir.
func pathsMountsBelow(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}
