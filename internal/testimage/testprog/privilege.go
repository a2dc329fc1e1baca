package main

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// privilegeKinds are the steps that probe what a container may leave on the
// host, mknod and chmod, and what the kernel lets it reach: syscall32.
func privilegeKinds() []*stepKind {
	return []*stepKind{
		{name: "mknod", minArgs: 1, maxArgs: 1, run: (*program).mknod},
		{name: "chmod", minArgs: 2, maxArgs: 2, check: checkModeAt(1), run: (*program).chmod},
		{name: "syscall32", run: (*program).syscall32},
	}
}

// mknod creates a character device node 1:3 (the host's /dev/null), mode
// 0666, at PATH and prints "mknod: created PATH"; it fails, with the
// kernel's error, where the process lacks CAP_MKNOD.
func (p *program) mknod(args []string) error {
	if err := unix.Mknod(args[0], unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	_, err := fmt.Fprintf(p.stdout, "mknod: created %s\n", args[0])
	return err
}

// parseMode parses an octal mode up to 07777, e.g. "6755".
func parseMode(s string) (uint32, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("mode %q: want octal from 0 to 7777", s)
	}
	return uint32(m), nil
}

func checkModeAt(i int) func([]string) error {
	return func(args []string) error {
		_, err := parseMode(args[i])
		return err
	}
}

// chmod sets PATH's mode (octal, setuid 4000 and setgid 2000 included; it
// follows a symbolic link) and prints "chmod: PATH MODE".
func (p *program) chmod(args []string) error {
	m, _ := parseMode(args[1])
	if err := unix.Chmod(args[0], m); err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	_, err := fmt.Fprintf(p.stdout, "chmod: %s %04o\n", args[0], m)
	return err
}
