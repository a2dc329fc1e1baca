package main

import (
	"os/exec"
	"path/filepath"
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

// TestLinksCaptureOnly builds the binary and checks that the linker left
// the reading half of daemon/logs out of it.
func TestLinksCaptureOnly(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pcnode-logd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command("go", "tool", "nm", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool nm: %v\n%s", err, out)
	}
	const pkg = "github.com/pcnode/pcnode/daemon/logs."
	var capture int
	for line := range strings.Lines(string(out)) {
		_, sym, ok := strings.Cut(line, pkg)
		if !ok {
			continue
		}
		sym = strings.TrimSpace(sym)
		if strings.HasPrefix(sym, "Read") || strings.HasPrefix(sym, "(*reader)") || strings.HasPrefix(sym, "Stat") || strings.HasPrefix(sym, "Seal") {
			t.Errorf("pcnode-logd links %s%s, a part of daemon/logs it does not use", pkg, sym)
		}
		if sym == "RunBinary" {
			capture++
		}
	}
	if capture != 1 {
		t.Errorf("pcnode-logd does not link %sRunBinary (nm found it %d times)", pkg, capture)
	}
}
