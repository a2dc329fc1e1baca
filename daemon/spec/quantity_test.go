package spec

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		resource string
		in       string
		want     int64
		wantErr  bool
	}{
		{ResourceMemory, "500Mi", 500 << 20, false},
		{ResourceMemory, "1.5Gi", 1536 << 20, false},
		{ResourceMemory, "2", 2, false},
		{ResourceMemory, "1", 1, false},
		{ResourceMemory, "0.5", 1, false}, // rounded up
		{ResourceMemory, "500m", 1, false},
		{ResourceMemory, "1k", 1000, false},
		{ResourceMemory, "1e3", 1000, false},
		{ResourceMemory, "128974848", 128974848, false},
		{ResourceMemory, "4Ei", 4 << 60, false},
		{ResourceMemory, "8Ei", 0, true},
		{ResourceMemory, "1e100", 0, true},
		{ResourceMemory, "-1", 0, true},
		{ResourceMemory, "1 Gi", 0, true},
		{ResourceMemory, "", 0, true},
		{ResourceMemory, "lots", 0, true},
		{ResourceCPU, "500m", 500, false},
		{ResourceCPU, "2", 2000, false},
		{ResourceCPU, "0.5", 500, false},
		{ResourceCPU, "1.0001", 1001, false}, // rounded up
		{ResourceCPU, "0.0001", 1, false},
		{ResourceCPU, "1E", 0, true},
		{ResourceGPU, "1", 1, false},
		{ResourceGPU, "0", 0, false},
		{ResourceGPU, "2.0", 2, false},
		{ResourceGPU, "0.5", 0, true},
		{ResourceGPU, "500m", 0, true},
		{ResourceGPU, "1k", 1000, false},
		{ResourceGPU, "3e9", 0, true},
		{"ephemeral-storage", "1Gi", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.resource+"="+tt.in, func(t *testing.T) {
			got, err := ParseQuantity(tt.resource, tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseQuantity(%q, %q) = %d, %v; want %d, error %v", tt.resource, tt.in, got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrQuantity) {
				t.Errorf("ParseQuantity(%q, %q) error %v does not wrap ErrQuantity", tt.resource, tt.in, err)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	if got, want := FormatBytes(50<<20), "50Mi"; got != want {
		t.Errorf("FormatBytes(50<<20) = %q, want %q", got, want)
	}
	if got, want := FormatMillis(1500), "1500m"; got != want {
		t.Errorf("FormatMillis(1500) = %q, want %q", got, want)
	}
	if got, want := FormatMillis(2000), "2"; got != want {
		t.Errorf("FormatMillis(2000) = %q, want %q", got, want)
	}
}

// Quantities whose arithmetic would take apimachinery minutes are refused
// at once (found by FuzzParseQuantity: exponents like 1e999999999).
func TestParseQuantityRefusesHugeExponents(t *testing.T) {
	for _, s := range []string{"1e999999999", "1E999999999", "1e+999999999", "1e-999999999", "1.5e31", "1e-31",
		"1" + strings.Repeat("0", 80)} {
		for _, name := range []string{ResourceMemory, ResourceCPU, ResourceGPU} {
			start := time.Now()
			_, err := ParseQuantity(name, s)
			if !errors.Is(err, ErrQuantity) {
				t.Errorf("ParseQuantity(%q, %q) = %v, want ErrQuantity", name, s, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("ParseQuantity(%q, %q) took %v", name, s, d)
			}
		}
	}
	if got, err := ParseQuantity(ResourceMemory, "1e3"); err != nil || got != 1000 {
		t.Errorf("ParseQuantity(memory, 1e3) = %d, %v, want 1000", got, err)
	}
	if got, err := ParseQuantity(ResourceMemory, "2E"); err != nil || got != 2e18 {
		t.Errorf("ParseQuantity(memory, 2E) = %d, %v, want 2e18 (exa suffix)", got, err)
	}
}
