//go:build !crashpoints

package daemon

const crashPointsEnabled = false

// crashAt does nothing: release builds never crash on purpose.
func crashAt(string) {}

// CheckCrashPoint returns nil: release builds ignore PCNODE_CRASH_AT.
func CheckCrashPoint() error { return nil }
