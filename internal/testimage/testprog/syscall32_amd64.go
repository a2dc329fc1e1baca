package main

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// fork32Exit is in syscall32_amd64.s.
func fork32Exit() int64

// syscall32 forks a child that exits through the kernel's 32-bit entry
// point and prints how it ended, which shows whether the container's
// seccomp filter admits 32-bit system calls.
func (p *program) syscall32([]string) error {
	pid := fork32Exit()
	if pid < 0 {
		return fmt.Errorf("syscall32: fork: %w", syscall.Errno(-pid))
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(int(pid), &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("syscall32: wait4: %w", err)
		}
		break
	}
	switch {
	case ws.Exited():
		_, err := fmt.Fprintf(p.stdout, "syscall32: exit %d\n", ws.ExitStatus())
		return err
	case ws.Signaled():
		_, err := fmt.Fprintf(p.stdout, "syscall32: killed by %s\n", unix.SignalName(ws.Signal()))
		return err
	}
	return fmt.Errorf("syscall32: child ended with wait status %#x", uint32(ws))
}
