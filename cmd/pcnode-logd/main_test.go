package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencies keeps the logging binary small: one runs per running
// task, so it may link the standard library and daemon/logs only (no cobra,
// gRPC, protobuf or containerd), and not log/slog, which daemon/logs keeps
// out of its capture half.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	want := []string{"github.com/pcnode/pcnode/daemon/logs", "github.com/pcnode/pcnode/cmd/pcnode-logd"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("non-standard dependencies of pcnode-logd = %q, want %q", got, want)
	}
	std, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, std)
	}
	for _, heavy := range []string{"log/slog", "encoding/json", "net/http", "crypto/tls"} {
		if slices.Contains(strings.Fields(string(std)), heavy) {
			t.Errorf("pcnode-logd depends on %s", heavy)
		}
	}
}
