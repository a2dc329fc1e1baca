package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// privSpec is an inline-template spec running the pctest command with one
// output channel "out" at /data/out bound to hostOut ("" for none).
func privSpec(image, name, hostOut string, command ...string) *pcnodev1.TaskSpec {
	tmpl := &pcnodev1.TaskTemplate{Identifier: name, Command: append([]string{"/pctest"}, command...)}
	s := &pcnodev1.TaskSpec{
		Name:     name,
		Image:    image,
		Template: &pcnodev1.TaskSpec_InlineTemplate{InlineTemplate: tmpl},
	}
	if hostOut != "" {
		tmpl.Outputs = []*pcnodev1.ChannelTemplate{{Name: "out", MountedPath: "/data/out"}}
		s.Outputs = []*pcnodev1.ChannelBinding{e2eBind("out", hostOut)}
	}
	return s
}

// privStdout is the task's stdout; its stderr is logged.
func privStdout(t *testing.T, d *daemontest.Daemon, id string) string {
	t.Helper()
	entries := d.TaskLogs(t, id)
	if stderr := daemontest.Output(entries, pcnodev1.LogStream_LOG_STREAM_STDERR); len(stderr) > 0 {
		t.Logf("task %s stderr: %s", id, stderr)
	}
	return string(daemontest.Output(entries, pcnodev1.LogStream_LOG_STREAM_STDOUT))
}

// privWantWarning fails t unless one of the task's warnings contains want.
func privWantWarning(t *testing.T, task *pcnodev1.Task, want string) {
	t.Helper()
	for _, w := range task.GetWarnings() {
		if strings.Contains(w, want) {
			return
		}
	}
	t.Errorf("task %s warnings = %q, want one containing %q", task.GetId(), task.GetWarnings(), want)
}

// TestIntegrationPrivilege checks that a task running as root leaves no
// privilege behind on the host (issue 7): it cannot create device nodes,
// setuid/setgid bits it sets on its outputs are cleared after it, device
// nodes found in its outputs are removed, each fix is reported on the task,
// and symlinks in the outputs are never followed. It also checks that a
// task naming no limits runs under the node's default memory limit and CPU
// quota, read back from the container's own cgroup.
func TestIntegrationPrivilege(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{Configure: func(c *config.Config) {
		c.Tasks.DefaultMemoryLimit = config.MustQuantity("300Mi")
		c.Tasks.DefaultCPULimit = config.MustQuantity("1500m")
	}})
	img := e2eTestImage(t, d).GetName()

	t.Run("root cannot create a device node", func(t *testing.T) {
		task, _ := d.Run(t, privSpec(img, "mknod", "", "id", "--", "mknod", "/tmp/null"))
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT, 1)
		logs := string(daemontest.Output(d.TaskLogs(t, task.GetId()), pcnodev1.LogStream_LOG_STREAM_UNSPECIFIED))
		if !strings.Contains(logs, "uid=0 gid=0") {
			t.Errorf("task output = %q, want it to run as root (uid=0 gid=0)", logs)
		}
		if !strings.Contains(logs, "pctest: mknod: /tmp/null: operation not permitted") {
			t.Errorf("task output = %q, want mknod to fail with EPERM", logs)
		}
		if strings.Contains(logs, "mknod: created") {
			t.Errorf("task output = %q: the device node was created", logs)
		}
	})

	t.Run("setuid, setgid and device nodes do not survive the task", func(t *testing.T) {
		out := d.DataDir(t, "priv", "out")
		// What a container could leave, planted from the host (the task
		// preserves its outputs): device nodes, and a symlink to a setuid
		// program outside the channel, which must stay as it is.
		decoy := filepath.Join(d.DataDir(t, "priv", "decoy"), "suid-decoy")
		if err := os.WriteFile(decoy, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(decoy, 0o755|os.ModeSetuid|os.ModeSetgid); err != nil {
			t.Fatal(err)
		}
		for name, mode := range map[string]uint32{"disk": unix.S_IFBLK, "null": unix.S_IFCHR} {
			p := filepath.Join(out, name)
			dev := unix.Mkdev(7, 0) // a loop device
			if mode == unix.S_IFCHR {
				dev = unix.Mkdev(1, 3) // null
			}
			if err := unix.Mknod(p, mode|0o666, int(dev)); err != nil {
				t.Fatalf("mknod %s: %v", p, err)
			}
			if err := os.Chmod(p, 0o666); err != nil { // world-writable, whatever the umask
				t.Fatal(err)
			}
		}
		if err := os.Symlink(decoy, filepath.Join(out, "link-to-decoy")); err != nil {
			t.Fatal(err)
		}
		spec := privSpec(img, "setuid", out,
			"write-file", "/data/out/suid", "100", "--", "chmod", "/data/out/suid", "4755", "--",
			"write-file", "/data/out/sub/sgid", "10", "--", "chmod", "/data/out/sub/sgid", "2755", "--",
			"write-file", "/data/out/both", "1", "--", "chmod", "/data/out/both", "6777", "--",
			"write-file", "/data/out/plain", "1")
		spec.PreserveOutputs = true
		task, _ := d.Run(t, spec)
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
		if got := privStdout(t, d, task.GetId()); !strings.Contains(got, "chmod: /data/out/both 6777") {
			t.Fatalf("task stdout = %q, want the chmods done", got)
		}
		for rel, want := range map[string]os.FileMode{"suid": 0o755, "sub/sgid": 0o755, "both": 0o777, "plain": 0o644} {
			fi, err := os.Lstat(filepath.Join(out, rel))
			if err != nil || fi.Mode() != want {
				t.Errorf("after the task, %s on the host is %v (%v), want %v", rel, fi.Mode(), err, want)
			}
		}
		for _, rel := range []string{"disk", "null"} {
			if fi, err := os.Lstat(filepath.Join(out, rel)); err == nil {
				t.Errorf("after the task, device node %s is still on the host (%v)", rel, fi.Mode())
			}
		}
		if fi, err := os.Lstat(decoy); err != nil || fi.Mode() != 0o755|os.ModeSetuid|os.ModeSetgid {
			t.Errorf("setuid decoy outside the channel is %v (%v), want it untouched: the symlink was followed", fi.Mode(), err)
		}
		if _, err := os.Lstat(filepath.Join(out, "link-to-decoy")); err != nil {
			t.Errorf("symlink in the outputs: %v, want it left as it was", err)
		}
		privWantWarning(t, task, `output channel "out": setuid/setgid bits cleared on "suid" (mode 4755, now 0755)`)
		privWantWarning(t, task, `output channel "out": setuid/setgid bits cleared on "sub/sgid" (mode 2755, now 0755)`)
		privWantWarning(t, task, `output channel "out": setuid/setgid bits cleared on "both" (mode 6777, now 0777)`)
		privWantWarning(t, task, `output channel "out": block device node "disk" (mode 0666) removed`)
		privWantWarning(t, task, `output channel "out": character device node "null" (mode 0666) removed`)
		if n := len(task.GetWarnings()); n != 5 {
			t.Errorf("task has %d warnings, want 5 (3 setuid/setgid files, 2 device nodes): %q", n, task.GetWarnings())
		}
		if !strings.Contains(task.GetMessage(), "5 setuid/setgid files, device nodes or over-deep directories fixed") {
			t.Errorf("task message = %q, want it to say 5 entries were fixed", task.GetMessage())
		}
		if got := task.GetOutputs(); len(got) != 1 || got[0].GetFileCount() != 4 {
			t.Errorf("task outputs = %v, want one channel of 4 files", got)
		}
	})

	t.Run("a spec with no limits gets the node's defaults in its cgroup", func(t *testing.T) {
		task := d.Submit(t, e2eSpec(img, "steps", "PCTEST_STEPS=cat /proc/self/cgroup -- echo ready -- sleep 60s"))
		mem, quota, period := privCgroupLimits(t, d, task.GetId())
		if mem != fmt.Sprint(300<<20) || quota != "150000" || period != "100000" {
			t.Errorf("task's cgroup: memory limit %s, CPU quota %s per %s µs; want %d, 150000 per 100000 (default_memory_limit 300Mi, default_cpu_limit 1500m)", mem, quota, period, 300<<20)
		}
		e2eCancel(t, d, task.GetId(), time.Second)
		task = d.GetTask(t, task.GetId())
		lim := task.GetInstance().GetResources().GetLimits()
		if lim.GetMemoryBytes() != 300<<20 || lim.GetCpuMillis() != 1500 {
			t.Errorf("task instance limits = %v, want memory 300Mi and 1500m CPU recorded", lim)
		}
		req := task.GetInstance().GetResources().GetRequests()
		if a := task.GetAllocation(); req.GetMemoryBytes() != a.GetMemoryBytes() || req.GetCpuMillis() != a.GetCpuMillis() {
			t.Errorf("task instance requests = %v, want what was reserved (%v)", req, a)
		}
	})

	t.Run("a spec's own limits are kept", func(t *testing.T) {
		spec := e2eSpec(img, "steps", "PCTEST_STEPS=cat /proc/self/cgroup -- echo ready -- sleep 60s")
		spec.Resources = &pcnodev1.ResourceRequirements{Limits: &pcnodev1.ResourceList{MemoryBytes: 200 << 20, CpuMillis: 500}}
		task := d.Submit(t, spec)
		mem, quota, period := privCgroupLimits(t, d, task.GetId())
		if mem != fmt.Sprint(200<<20) || quota != "50000" || period != "100000" {
			t.Errorf("task's cgroup: memory limit %s, CPU quota %s per %s µs; want %d, 50000 per 100000 (the spec's)", mem, quota, period, 200<<20)
		}
		e2eCancel(t, d, task.GetId(), time.Second)
	})
}

// privCgroupLimits waits for the running task id to print its
// /proc/self/cgroup and "ready", then reads that cgroup's memory limit and
// CPU quota and period from the host (cgroup v2: memory.max, cpu.max; v1:
// memory.limit_in_bytes, cpu.cfs_quota_us, cpu.cfs_period_us), "max" where
// there is none.
func privCgroupLimits(t *testing.T, d *daemontest.Daemon, id string) (mem, quota, period string) {
	t.Helper()
	d.WaitLog(t, id, "ready\n", 0)
	paths := map[string]string{} // controller ("" for v2) → path
	for _, line := range strings.Split(privStdout(t, d, id), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			paths[c] = f[2]
		}
	}
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("reading the task's cgroup: %v (its /proc/self/cgroup: %v)", err, paths)
		}
		return strings.TrimSpace(string(b))
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		dir := filepath.Join("/sys/fs/cgroup", paths[""])
		q, per, _ := strings.Cut(read(filepath.Join(dir, "cpu.max")), " ")
		return read(filepath.Join(dir, "memory.max")), q, per
	}
	mem = read(filepath.Join("/sys/fs/cgroup/memory", paths["memory"], "memory.limit_in_bytes"))
	if v, err := strconv.ParseInt(mem, 10, 64); err == nil && v >= 1<<62 {
		mem = "max" // v1's "unlimited"
	}
	cpu := filepath.Join("/sys/fs/cgroup/cpu", paths["cpu"])
	if quota = read(filepath.Join(cpu, "cpu.cfs_quota_us")); quota == "-1" {
		quota = "max"
	}
	return mem, quota, read(filepath.Join(cpu, "cpu.cfs_period_us"))
}

// TestIntegrationDefaultUser checks tasks.default_user: a task whose spec
// names no user runs as it and can write its outputs, which the host then
// sees owned by it; a spec's own user still wins. It also checks that
// manifests are capped at tasks.max_output_files with the cap on the task.
func TestIntegrationDefaultUser(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{Configure: func(c *config.Config) {
		c.Tasks.DefaultUser = "1000:1001"
		c.Tasks.MaxOutputFiles = 3
	}})
	img := e2eTestImage(t, d).GetName()

	t.Run("runs as the node's default user and writes its outputs", func(t *testing.T) {
		out := d.DataPath("user", "out")
		task, _ := d.Run(t, privSpec(img, "user", out, "id", "--", "write-file", "/data/out/result", "64"))
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
		if got, want := privStdout(t, d, task.GetId()), "uid=1000 gid=1001 "; !strings.HasPrefix(got, want) {
			t.Errorf("id in the container = %q, want %q…", got, want)
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(out, "result"), &st); err != nil || st.Uid != 1000 || st.Gid != 1001 {
			t.Errorf("output file on the host owned by %d:%d (%v), want 1000:1001", st.Uid, st.Gid, err)
		}
	})

	t.Run("a spec's own user wins", func(t *testing.T) {
		spec := privSpec(img, "root", "", "id")
		spec.User = "0:0"
		task, _ := d.Run(t, spec)
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
		if got := privStdout(t, d, task.GetId()); !strings.HasPrefix(got, "uid=0 gid=0") {
			t.Errorf("id in the container = %q, want uid=0 gid=0", got)
		}
	})

	t.Run("manifests are capped at max_output_files", func(t *testing.T) {
		out := d.DataPath("cap", "out")
		var cmd []string
		for i := range 5 {
			cmd = append(cmd, "write-file", fmt.Sprintf("/data/out/f%d", i), "10", "--")
		}
		cmd = append(cmd, "chmod", "/data/out/f4", "4755")
		task, _ := d.Run(t, privSpec(img, "cap", out, cmd...))
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
		if got := task.GetOutputs(); len(got) != 1 || got[0].GetFileCount() != 3 {
			t.Errorf("task outputs = %v, want 3 files listed", got)
		}
		resp, err := d.Client.Tasks.GetTaskOutputs(t.Context(), &pcnodev1.GetTaskOutputsRequest{TaskId: task.GetId()})
		if err != nil {
			t.Fatalf("GetTaskOutputs = %v", client.FromError(err))
		}
		if m := resp.GetManifests(); len(m) != 1 || len(m[0].GetFiles()) != 3 {
			t.Errorf("GetTaskOutputs = %v, want one manifest of 3 files", m)
		}
		privWantWarning(t, task, `output channel "out": manifest truncated at tasks.max_output_files = 3`)
		privWantWarning(t, task, `2 not listed`)
		// f4, beyond the cap, was still checked.
		privWantWarning(t, task, `setuid/setgid bits cleared on "f4"`)
		if fi, err := os.Lstat(filepath.Join(out, "f4")); err != nil || fi.Mode()&os.ModeSetuid != 0 {
			t.Errorf("f4 (not listed) on the host is %v (%v), want setuid cleared", fi.Mode(), err)
		}
		if !strings.Contains(task.GetMessage(), "manifests truncated at tasks.max_output_files = 3") {
			t.Errorf("task message = %q, want it to say the manifest was truncated", task.GetMessage())
		}
	})
}
