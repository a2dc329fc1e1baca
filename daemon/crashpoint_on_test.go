//go:build crashpoints

package daemon

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pcnode/pcnode/daemon/config"
)

// TestCheckCrashPoint: in a crashpoints build an unknown PCNODE_CRASH_AT is
// an error at startup (New), naming the value and the known points; a known
// one or none is fine.
func TestCheckCrashPoint(t *testing.T) {
	for _, tc := range []struct {
		value   string
		wantErr bool
	}{
		{"", false},
		{crashAfterRunning, false},
		{"after-nothing", true},
		{"AFTER-RUNNING", true},
	} {
		t.Run(tc.value, func(t *testing.T) {
			t.Setenv(EnvCrashAt, tc.value)
			err := CheckCrashPoint()
			if (err != nil) != tc.wantErr {
				t.Fatalf("CheckCrashPoint() with %s=%q = %v, want error %v", EnvCrashAt, tc.value, err, tc.wantErr)
			}
			if err == nil {
				return
			}
			for _, want := range append([]string{EnvCrashAt, tc.value}, CrashPoints()...) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("CheckCrashPoint() = %q, want it to name %q", err, want)
				}
			}
			// New fails with it before it touches anything.
			cfg := config.DefaultConfig()
			cfg.Node.StateDir = filepath.Join(t.TempDir(), "state")
			if _, nerr := New(context.Background(), cfg, nil); nerr == nil || !strings.Contains(nerr.Error(), EnvCrashAt) {
				t.Errorf("New() with %s=%q = %v, want the crash point error", EnvCrashAt, tc.value, nerr)
			}
		})
	}
}
