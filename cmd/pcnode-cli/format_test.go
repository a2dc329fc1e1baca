package main

import (
	"math"
	"testing"
	"time"
)

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{1536, "1.5 KiB"},
		{1024*1024 - 1, "1 MiB"}, // 1023.999 KiB rounds up a unit, never "1024 KiB"
		{24684084 * 1024, "23.5 GiB"},
		{2 << 40, "2 TiB"},
		{math.MaxInt64, "8 EiB"},
		{-1536, "-1.5 KiB"},
		{math.MinInt64, "-9223372036854775808 B"},
	}
	for _, tt := range tests {
		if got := humanBytes(tt.in); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{450 * time.Millisecond, "450ms"},
		{999600 * time.Microsecond, "1s"},
		{1500 * time.Millisecond, "1.5s"},
		{12300 * time.Millisecond, "12s"},
		{59600 * time.Millisecond, "1m"},
		{92 * time.Second, "1m32s"},
		{time.Hour - 300*time.Millisecond, "1h"},
		{2*time.Hour + 5*time.Minute + 20*time.Second, "2h5m"},
		{76 * time.Hour, "3d4h"},
		{-92 * time.Second, "-1m32s"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.in); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHumanCPU(t *testing.T) {
	for in, want := range map[int64]string{0: "0 cores", 250: "0.25 cores", 1000: "1 core", 2000: "2 cores", 1500: "1.5 cores", 1: "0.001 cores"} {
		if got := humanCPU(in); got != want {
			t.Errorf("humanCPU(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestHumanPercent(t *testing.T) {
	for _, tt := range []struct {
		done, total int64
		want        string
	}{{0, 0, "-"}, {5, 10, "50%"}, {11, 10, "100%"}, {1, 3, "33%"}} {
		if got := humanPercent(tt.done, tt.total); got != tt.want {
			t.Errorf("humanPercent(%d, %d) = %q, want %q", tt.done, tt.total, got, tt.want)
		}
	}
}
