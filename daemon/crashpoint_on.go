//go:build crashpoints

package daemon

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
)

const crashPointsEnabled = true

var crashTarget = sync.OnceValue(func() string {
	p := os.Getenv(EnvCrashAt)
	if p != "" && !slices.Contains(crashPoints, p) {
		fmt.Fprintf(os.Stderr, "pcnoded: %s=%q names no crash point (known: %q)\n", EnvCrashAt, p, crashPoints)
		os.Exit(2)
	}
	return p
})

// crashAt kills the process with SIGKILL when point is the one named by
// PCNODE_CRASH_AT, after saying so on stderr (unbuffered).
func crashAt(point string) {
	if crashTarget() != point {
		return
	}
	fmt.Fprintf(os.Stderr, "pcnoded: crash point %s reached: SIGKILL\n", point)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is delivered before anything else happens
}
