//go:build !amd64

package main

import (
	"fmt"
	"runtime"
)

// syscall32 needs a 32-bit entry point that a 64-bit process can reach,
// which only amd64 has (int 0x80).
func (p *program) syscall32([]string) error {
	return fmt.Errorf("syscall32: not available on %s", runtime.GOARCH)
}
