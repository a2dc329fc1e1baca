//go:build !crashpoints

package daemon

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCrashPointsRelease: a release build never crashes at a point, even
// with PCNODE_CRASH_AT naming it.
func TestCrashPointsRelease(t *testing.T) {
	if CrashPointsEnabled() {
		t.Fatalf("CrashPointsEnabled() = true in a build without the crashpoints tag")
	}
	for _, p := range CrashPoints() {
		t.Setenv(EnvCrashAt, p)
		crashAt(p) // returns: this test process lives on
	}
}

// TestCrashPointsPlaced: every point has a unique name and is placed in
// exactly one place of the lifecycle's code.
func TestCrashPointsPlaced(t *testing.T) {
	points := CrashPoints()
	if len(points) == 0 {
		t.Fatal("CrashPoints() is empty")
	}
	sorted := slices.Clone(points)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(points) {
		t.Errorf("CrashPoints() = %q: names not unique", points)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || strings.HasPrefix(f, "crashpoint") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	consts, err := os.ReadFile("crashpoint.go")
	if err != nil {
		t.Fatal(err)
	}
	placed := map[string]bool{}
	for _, m := range regexp.MustCompile(`crashAt\((\w+)\)`).FindAllStringSubmatch(src.String(), -1) {
		placed[m[1]] = true
	}
	listed := map[string]bool{}
	for _, p := range points {
		m := regexp.MustCompile(`(?m)^\s*(crash\w+)\s*=\s*"` + regexp.QuoteMeta(p) + `"`).FindSubmatch(consts)
		if m == nil {
			t.Errorf("crash point %q has no constant in crashpoint.go", p)
			continue
		}
		listed[string(m[1])] = true
		if n := strings.Count(src.String(), "crashAt("+string(m[1])+")"); n != 1 {
			t.Errorf("crashAt(%s) appears %d times in the daemon's code, want once", m[1], n)
		}
	}
	for c := range placed {
		if !listed[c] {
			t.Errorf("crashAt(%s) is placed but not listed in CrashPoints(): the crash-point test would never reach it", c)
		}
	}
}
