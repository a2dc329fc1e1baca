package gpu_test

import (
	"strings"
	"testing"

	"github.com/pcnode/pcnode/gpu"
)

func TestHealthZeroIsUnknown(t *testing.T) {
	var s gpu.Status
	if s.Health != gpu.HealthUnknown {
		t.Errorf("zero Status.Health = %v, want %v", s.Health, gpu.HealthUnknown)
	}
	for h, want := range map[gpu.Health]string{
		gpu.HealthUnknown: "unknown", gpu.HealthHealthy: "healthy", gpu.HealthUnhealthy: "unhealthy", 7: "Health(7)",
	} {
		if got := h.String(); got != want {
			t.Errorf("Health(%d).String() = %q, want %q", int(h), got, want)
		}
	}
}

func TestXIDDescription(t *testing.T) {
	for _, tc := range []struct {
		code int
		want string
	}{
		{79, "XID 79: GPU has fallen off the bus"},
		{13, "XID 13: graphics engine exception (application error)"},
		{48, "XID 48: double-bit ECC error"},
		{9999, "XID 9999"},
	} {
		if got := gpu.XIDDescription(tc.code); got != tc.want {
			t.Errorf("XIDDescription(%d) = %q, want %q", tc.code, got, tc.want)
		}
	}
	for _, x := range gpu.DefaultAppXIDs {
		if got := gpu.XIDDescription(x); !strings.Contains(got, "application error") && x != 45 {
			t.Errorf("XIDDescription(%d) = %q, want it to say it is an application error", x, got)
		}
	}
}
