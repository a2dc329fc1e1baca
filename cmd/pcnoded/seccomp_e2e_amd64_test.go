package main

import (
	"strings"
	"testing"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestIntegrationSeccomp32Bit checks the seccomp filter's architectures
// through a real container: by default a system call made through the
// kernel's 32-bit entry point (int 0x80) kills the thread that makes it
// with SIGSYS, while native system calls work; with
// tasks.allow_32bit_syscalls the same call is admitted. pctest's syscall32
// step makes the call in a forked child and prints how the child ended.
func TestIntegrationSeccomp32Bit(t *testing.T) {
	for _, c := range []struct {
		name  string
		allow bool
		want  string
	}{
		{"default: native only", false, "syscall32: killed by SIGSYS\n"},
		{"allow_32bit_syscalls", true, "syscall32: exit 42\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := daemontest.Start(t, daemontest.Options{Configure: func(cfg *config.Config) {
				cfg.Tasks.Allow32BitSyscalls = c.allow
			}})
			img := e2eTestImage(t, d).GetName()
			task, _ := d.Run(t, privSpec(img, "syscall32", "", "echo", "native", "--", "syscall32"))
			e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
			if got, want := privStdout(t, d, task.GetId()), "native\n"+c.want; got != want {
				t.Errorf("stdout = %q, want %q", got, want)
			}
			if !strings.HasPrefix(task.GetMessage(), "exited 0") {
				t.Errorf("message = %q", task.GetMessage())
			}
		})
	}
}
