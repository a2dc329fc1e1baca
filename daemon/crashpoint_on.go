//go:build crashpoints

package daemon

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
)

const crashPointsEnabled = true

// crashTarget is the point named by PCNODE_CRASH_AT, read once. New has
// checked it (CheckCrashPoint): an unknown name never gets this far in
// pcnoded; a test binary that skipped the check crashes at no point.
var crashTarget = sync.OnceValue(func() string {
	p := os.Getenv(EnvCrashAt)
	if checkCrashPoint(p) != nil {
		return ""
	}
	return p
})

// CheckCrashPoint returns an error naming PCNODE_CRASH_AT's value and the
// known points when it names none; New calls it, so that pcnoded fails at
// startup rather than running on with a crash that never comes.
func CheckCrashPoint() error { return checkCrashPoint(os.Getenv(EnvCrashAt)) }

func checkCrashPoint(p string) error {
	if p != "" && !slices.Contains(crashPoints, p) {
		return fmt.Errorf("%s=%q names no crash point (known: %s)", EnvCrashAt, p, strings.Join(crashPoints, ", "))
	}
	return nil
}

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
