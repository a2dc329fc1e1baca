// Package testenv owns how tests find the real services they need (a private
// containerd started by the test command) and how they decide between skipping
// and failing when those are missing.
//
// Plain `go test ./...` needs nothing but Go: tests that need containerd skip,
// saying so. The project's test command (`make test`) starts a private
// containerd, exports its address in PCNODE_TEST_CONTAINERD_ADDRESS and sets
// PCNODE_TEST_REQUIRE_INTEGRATION=1, under which a missing service fails the
// test instead of skipping it, so a skipped integration suite never counts as
// a pass. Only test code imports this package.
package testenv

import (
	"os"
	"testing"
)

const (
	// EnvContainerdAddress names the variable holding the private
	// containerd's socket path.
	EnvContainerdAddress = "PCNODE_TEST_CONTAINERD_ADDRESS"
	// EnvRequireIntegration, when "1", turns integration skips into failures.
	EnvRequireIntegration = "PCNODE_TEST_REQUIRE_INTEGRATION"
)

// Required reports whether integration tests must run rather than skip.
func Required() bool { return os.Getenv(EnvRequireIntegration) == "1" }

// Unavailable skips t with reason, or fails it when integration is required.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if Required() {
		t.Fatalf("integration test cannot run: %s (%s=1)", reason, EnvRequireIntegration)
	}
	t.Skipf("skipping integration test: %s; run `make test` as root to start a private containerd", reason)
}

// ContainerdAddress returns the private containerd's socket, or skips/fails t
// when none was started.
func ContainerdAddress(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(EnvContainerdAddress)
	if addr == "" {
		Unavailable(t, EnvContainerdAddress+" is not set")
		return ""
	}
	if _, err := os.Stat(addr); err != nil {
		Unavailable(t, "containerd socket: "+err.Error())
		return ""
	}
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root to run containers")
	}
	return addr
}
