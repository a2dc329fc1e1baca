package runtime

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	cgroup1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	cgroup2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/google/go-cmp/cmp"
)

func TestUsageAndOOMOfMetrics(t *testing.T) {
	tests := []struct {
		name     string
		m        any
		want     Usage
		wantOOM  uint64
		wantHave bool
	}{
		{
			name: "cgroup v1",
			m: &cgroup1stats.Metrics{
				Memory:           &cgroup1stats.MemoryStat{Usage: &cgroup1stats.MemoryEntry{Usage: 10, Max: 33 << 20}},
				CPU:              &cgroup1stats.CPUStat{Usage: &cgroup1stats.CPUUsage{Total: 1_500_000_000}},
				MemoryOomControl: &cgroup1stats.MemoryOomControl{OomKill: 1},
			},
			want:    Usage{PeakMemoryBytes: 33 << 20, CPUTime: 1500 * time.Millisecond},
			wantOOM: 1, wantHave: true,
		},
		{
			name:     "cgroup v1 without oom_control",
			m:        &cgroup1stats.Metrics{Memory: &cgroup1stats.MemoryStat{Usage: &cgroup1stats.MemoryEntry{Usage: 7}}},
			want:     Usage{PeakMemoryBytes: 7},
			wantHave: false,
		},
		{
			name: "cgroup v2",
			m: &cgroup2stats.Metrics{
				Memory:       &cgroup2stats.MemoryStat{Usage: 5, MaxUsage: 64 << 20},
				CPU:          &cgroup2stats.CPUStat{UsageUsec: 2_000_000},
				MemoryEvents: &cgroup2stats.MemoryEvents{OomKill: 0, Oom: 2},
			},
			want:     Usage{PeakMemoryBytes: 64 << 20, CPUTime: 2 * time.Second},
			wantHave: true,
		},
		{
			name: "cgroup v2 without memory.peak",
			m:    &cgroup2stats.Metrics{Memory: &cgroup2stats.MemoryStat{Usage: 5}},
			want: Usage{PeakMemoryBytes: 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, usageOf(tt.m)); diff != "" {
				t.Errorf("usageOf (-want +got):\n%s", diff)
			}
			n, ok := oomKillsOf(tt.m)
			if n != tt.wantOOM || ok != tt.wantHave {
				t.Errorf("oomKillsOf = %d, %v, want %d, %v", n, ok, tt.wantOOM, tt.wantHave)
			}
		})
	}
}

func TestCgroupOOMKills(t *testing.T) {
	write := func(t *testing.T, path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("v1", func(t *testing.T) {
		root := t.TempDir()
		write(t, filepath.Join(root, "memory/pcnode/t1/memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
		if n, err := cgroupOOMKills(root, "/pcnode/t1"); err != nil || n != 2 {
			t.Fatalf("cgroupOOMKills(v1) = %d, %v, want 2", n, err)
		}
	})
	t.Run("v2", func(t *testing.T) {
		root := t.TempDir()
		write(t, filepath.Join(root, "cgroup.controllers"), "memory pids\n")
		write(t, filepath.Join(root, "pcnode/t1/memory.events"), "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
		if n, err := cgroupOOMKills(root, "/pcnode/t1"); err != nil || n != 1 {
			t.Fatalf("cgroupOOMKills(v2) = %d, %v, want 1", n, err)
		}
	})
	t.Run("systemd path", func(t *testing.T) {
		if _, err := cgroupOOMKills(t.TempDir(), "system.slice:pcnode:t1"); err == nil {
			t.Fatal("cgroupOOMKills(systemd path) = nil error, want one")
		}
	})
	t.Run("no counter", func(t *testing.T) {
		if _, err := parseOOMKill([]byte("oom_kill_disable 0\nunder_oom 0\n")); err == nil {
			t.Fatal("parseOOMKill(old kernel) = nil error, want one")
		}
	})
}
