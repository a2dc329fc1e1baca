package sched

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestApplyDefaults(t *testing.T) {
	d := Defaults{MilliCPU: 500, MemoryBytes: 2 * gib}
	tests := []struct {
		name string
		in   Resources
		want Resources
	}{
		{"nothing requested", Resources{}, Resources{MilliCPU: 500, MemoryBytes: 2 * gib}},
		{"cpu only", Resources{MilliCPU: 3000}, Resources{MilliCPU: 3000, MemoryBytes: 2 * gib}},
		{"memory only", Resources{MemoryBytes: gib}, Resources{MilliCPU: 500, MemoryBytes: gib}},
		{"both", Resources{MilliCPU: 1, MemoryBytes: 1}, Resources{MilliCPU: 1, MemoryBytes: 1}},
		{"gpus kept, not defaulted", Resources{GPUs: 2}, Resources{MilliCPU: 500, MemoryBytes: 2 * gib, GPUs: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ApplyDefaults(tt.in, d); got != tt.want {
				t.Errorf("ApplyDefaults(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	if got, want := ApplyDefaults(Resources{}, Defaults{MilliCPU: DefaultMilliCPU, MemoryBytes: DefaultMemoryBytes}), (Resources{MilliCPU: 1000, MemoryBytes: gib}); got != want {
		t.Errorf("ApplyDefaults with package defaults = %v, want %v", got, want)
	}
}

func TestAllocatable(t *testing.T) {
	tests := []struct {
		name               string
		capacity, reserved Resources
		want               Resources
	}{
		{"no reservation", Resources{8000, 32 * gib, 2}, Resources{}, Resources{8000, 32 * gib, 2}},
		{"reserved", Resources{8000, 32 * gib, 2}, Resources{1000, 2 * gib, 0}, Resources{7000, 30 * gib, 2}},
		{"over-reserved clamps to zero", Resources{1000, gib, 1}, Resources{2000, 2 * gib, 3}, Resources{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Allocatable(tt.capacity, tt.reserved); got != tt.want {
				t.Errorf("Allocatable(%v, %v) = %v, want %v", tt.capacity, tt.reserved, got, tt.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 bytes"},
		{1023, "1023 bytes"},
		{1024, "1024 bytes (1.0 KiB)"},
		{1536 << 20, "1610612736 bytes (1.5 GiB)"},
		{8 * gib, "8589934592 bytes (8.0 GiB)"},
		{-2 * gib, "-2147483648 bytes (-2.0 GiB)"},
	}
	for _, tt := range tests {
		if got := formatBytes(tt.in); got != tt.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got, want := (Resources{1500, 2 * gib, 1}).String(), "cpu 1500m, memory 2147483648 bytes (2.0 GiB), gpus 1"; got != want {
		t.Errorf("Resources.String() = %q, want %q", got, want)
	}
	if got, want := Unhealthy.String(), "unhealthy"; got != want {
		t.Errorf("Unhealthy.String() = %q, want %q", got, want)
	}
	if diff := cmp.Diff("Health(7)", Health(7).String()); diff != "" {
		t.Errorf("Health(7).String() mismatch (-want +got):\n%s", diff)
	}
}
