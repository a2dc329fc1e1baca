package daemon

import (
	"os"
	goruntime "runtime"
	"strings"
	"testing"
)

const sampleMeminfo = `MemTotal:       16318480 kB
MemFree:          503216 kB
MemAvailable:    9620424 kB
Buffers:          812340 kB
Cached:          8012112 kB
SwapCached:            0 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
`

func TestParseMemTotal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{name: "meminfo", in: sampleMeminfo, want: 16318480 * 1024},
		{name: "not first line", in: "MemFree: 1 kB\nMemTotal: 2048 kB\n", want: 2048 * 1024},
		{name: "first match wins", in: "MemTotal: 1 kB\nMemTotal: 2 kB\n", want: 1024},
		{name: "no unit", in: "MemTotal: 10", want: 10240},
		{name: "indented, no newline", in: "   MemTotal:\t\t 7 kB", want: 7168},
		{name: "zero", in: "MemTotal: 0 kB\n", want: 0},
		{name: "CRLF", in: "MemTotal: 3 kB\r\n", want: 3072},
		{name: "empty", in: "", wantErr: true},
		{name: "missing", in: "MemFree: 1 kB\nMemAvailable: 2 kB\n", wantErr: true},
		{name: "no value", in: "MemTotal:\n", wantErr: true},
		{name: "not a number", in: "MemTotal: lots kB\n", wantErr: true},
		{name: "fraction", in: "MemTotal: 1.5 kB\n", wantErr: true},
		{name: "overflows int64", in: "MemTotal: 99999999999999999999 kB\n", wantErr: true},
		{name: "other key with prefix", in: "MemTotalX: 5 kB\n", wantErr: true},
		{name: "no colon", in: "MemTotal 5 kB\n", wantErr: true},
		{name: "lower case", in: "memtotal: 5 kB\n", wantErr: true},
		{name: "binary", in: "\x00\xff\xfe", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMemTotal([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseMemTotal(%q) = %d, %v, want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "meminfo: ") {
				t.Errorf("parseMemTotal(%q) error = %q, want it to start with \"meminfo: \"", tc.in, err)
			}
		})
	}
}

func FuzzParseMemTotal(f *testing.F) {
	f.Add([]byte(sampleMeminfo))
	f.Add([]byte("MemTotal: 1 kB"))
	f.Add([]byte("MemTotal:"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseMemTotal(b)
		if err != nil && got != 0 {
			t.Errorf("parseMemTotal(%q) = %d with error %v, want 0", b, got, err)
		}
		if err == nil && !strings.Contains(string(b), "MemTotal:") {
			t.Errorf("parseMemTotal(%q) = %d without a MemTotal line", b, got)
		}
	})
}

func TestHostCapacity(t *testing.T) {
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		t.Skipf("needs /proc/meminfo (Linux): %v", err)
	}
	cpu, mem, err := hostCapacity()
	if err != nil {
		t.Fatalf("hostCapacity() error = %v", err)
	}
	if want := int64(goruntime.NumCPU()) * 1000; cpu != want {
		t.Errorf("hostCapacity() cpu = %d, want %d", cpu, want)
	}
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	total, err := parseMemTotal(b)
	if err != nil {
		t.Fatal(err)
	}
	if mem <= 0 || mem > total {
		t.Errorf("hostCapacity() memory = %d, want in (0, MemTotal %d]", mem, total)
	}
}
