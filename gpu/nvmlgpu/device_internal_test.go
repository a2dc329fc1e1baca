package nvmlgpu

import (
	"regexp"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

func TestSysfsPCIAddress(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"00000000:07:00.0", "0000:07:00.0"},
		{"00000001:AB:1F.7", "0001:ab:1f.7"},
		{"0000:07:00.0", "0000:07:00.0"},
		{"", ""},
		{"00000000:07:00", ""},
		{"00010000:07:00.0", ""},
		{"00000000:../00.0", ""},
		{"00000000:07:00.0/../../x", ""},
		{"00000000:0g:00.0", ""},
	} {
		if got := sysfsPCIAddress(tc.in); got != tc.want {
			t.Errorf("sysfsPCIAddress(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

var pciAddress = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-9a-f]$`)

// FuzzSysfsPCIAddress: whatever the driver writes, the result is empty or
// a plain PCI address, safe to join into a sysfs path.
func FuzzSysfsPCIAddress(f *testing.F) {
	for _, s := range []string{"00000000:07:00.0", "0000:07:00.0", "::.", "00000000:07:00.0\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if got := sysfsPCIAddress(in); got != "" && !pciAddress.MatchString(got) {
			t.Errorf("sysfsPCIAddress(%q) = %q, want empty or a PCI address", in, got)
		}
	})
}

func TestBusID(t *testing.T) {
	var p nvml.PciInfo
	if got := busID(p); got != "" {
		t.Errorf("busID(empty) = %q, want empty", got)
	}
	for i, c := range "00000000:07:00.0" {
		p.BusIdLegacy[i%16] = int8(c)
	}
	if got := busID(p); got == "" {
		t.Errorf("busID(legacy only) = %q, want the legacy id", got)
	}
	full := "00000000:07:00.0"
	for i := range p.BusId {
		p.BusId[i] = -1 // no NUL: must stop at the array's end
	}
	for i, c := range full {
		p.BusId[i] = int8(c)
	}
	if got := busID(p); len(got) != len(p.BusId) {
		t.Errorf("busID(unterminated) has length %d, want %d", len(got), len(p.BusId))
	}
}
