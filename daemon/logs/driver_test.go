package logs

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestRunDriverEntries(t *testing.T) {
	long := strings.Repeat("L", MaxEntryBytes)
	for _, tc := range []struct {
		name           string
		stdout, stderr string
		want           []wantEntry
	}{
		{
			name:   "lines",
			stdout: "one\ntwo\n\nthree\n",
			want:   numbered(1, StreamStdout, []string{"one\n", "two\n", "\n", "three\n"}),
		},
		{
			name:   "final line without newline",
			stdout: "first\nno newline",
			want:   numbered(1, StreamStdout, []string{"first\n", "no newline"}),
		},
		{
			name:   "only stderr",
			stderr: "oops\r\n\x00binary\xff\n",
			want:   numbered(1, StreamStderr, []string{"oops\r\n", "\x00binary\xff\n"}),
		},
		{
			name: "nothing",
		},
		{
			name:   "line of exactly the limit with newline",
			stdout: long[1:] + "\n" + "x\n",
			want:   numbered(1, StreamStdout, []string{long[1:] + "\n", "x\n"}),
		},
		{
			name:   "line one over the limit",
			stdout: long + "\n",
			want:   numbered(1, StreamStdout, []string{long, "\n"}),
		},
		{
			name:   "over-long line split into pieces",
			stdout: long + long + "tail\nnext\n",
			want:   numbered(1, StreamStdout, []string{long, long, "tail\n", "next\n"}),
		},
		{
			name:   "over-long final line without newline",
			stdout: long + "rest",
			want:   numbered(1, StreamStdout, []string{long, "rest"}),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "log")
			runDriver(t, DriverConfig{Dir: dir}, tc.stdout, tc.stderr)
			got := strip(readAll(t, dir, ReadOptions{}))
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Read after RunDriver mismatch (-want +got):\n%s", diff)
			}
			info, err := Stat(dir)
			if err != nil {
				t.Fatalf("Stat(%q) = %v", dir, err)
			}
			if want := (Info{FirstSeq: 1, LastSeq: uint64(len(tc.want)), Ended: true, Segments: 1, Bytes: info.Bytes}); info != want {
				t.Errorf("Stat(%q) = %+v, want %+v", dir, info, want)
			}
		})
	}
}

// TestRunDriverChunkedWrites feeds the streams in awkward pieces and checks
// the entries against the oracle.
func TestRunDriverChunkedWrites(t *testing.T) {
	data := genLines(1, 3<<20, true)
	dir := t.TempDir()
	pr, pw := io.Pipe()
	go func() {
		for rest, n := data, 1; len(rest) > 0; n = n*7%65599 + 1 {
			k := min(n, len(rest))
			pw.Write(rest[:k])
			rest = rest[k:]
		}
		pw.Close()
	}()
	if err := RunDriver(context.Background(), DriverConfig{Dir: dir}, pr, strings.NewReader("")); err != nil {
		t.Fatalf("RunDriver = %v, want nil", err)
	}
	want := numbered(1, StreamStdout, splitOracle(data))
	if diff := cmp.Diff(want, strip(readAll(t, dir, ReadOptions{}))); diff != "" {
		t.Errorf("entries mismatch (-want +got):\n%s", diff)
	}
}

// TestRunDriverInterleaved writes to the two streams in a known order and
// checks that sequence numbers follow it.
func TestRunDriverInterleaved(t *testing.T) {
	dir := t.TempDir()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- RunDriver(context.Background(), DriverConfig{Dir: dir}, outR, errR) }()
	steps := []wantEntry{
		{1, StreamStdout, "out 1\n"},
		{2, StreamStderr, "err 1\n"},
		{3, StreamStderr, "err 2\n"},
		{4, StreamStdout, "out 2\n"},
		{5, StreamStderr, "err 3 without newline"},
		{6, StreamStdout, "out 3 without newline"},
	}
	for i, s := range steps[:4] {
		w := outW
		if s.Stream == StreamStderr {
			w = errW
		}
		w.WriteString(s.Data)
		waitFor(t, s.Data, func() bool { info, err := Stat(dir); return err == nil && info.LastSeq == uint64(i+1) })
	}
	errW.WriteString(steps[4].Data)
	errW.Close()
	waitFor(t, "stderr's final entry", func() bool { info, err := Stat(dir); return err == nil && info.LastSeq == 5 })
	outW.WriteString(steps[5].Data)
	outW.Close()
	if err := <-done; err != nil {
		t.Fatalf("RunDriver = %v, want nil", err)
	}
	if diff := cmp.Diff(steps, strip(readAll(t, dir, ReadOptions{}))); diff != "" {
		t.Errorf("entries mismatch (-want +got):\n%s", diff)
	}
	got := readAll(t, dir, ReadOptions{})
	for i := 1; i < len(got); i++ {
		if got[i].Time.Before(got[i-1].Time) {
			t.Errorf("entry %d time %v before entry %d time %v", got[i].Seq, got[i].Time, got[i-1].Seq, got[i-1].Time)
		}
	}
}

// TestRunDriverResume runs the driver twice on one log, as after a restart.
func TestRunDriverResume(t *testing.T) {
	dir := t.TempDir()
	cfg := DriverConfig{Dir: dir, MaxFileBytes: 200, MaxFiles: 100}
	runDriver(t, cfg, "a1\na2\na3\n", "e1\n")
	runDriver(t, cfg, "b1\n", "")
	runDriver(t, cfg, "", "")
	runDriver(t, cfg, "c1\nc2", "")
	got := strip(readAll(t, dir, ReadOptions{}))
	var datas []string
	for _, e := range got {
		datas = append(datas, e.Data)
		if want := uint64(len(datas)); e.Seq != want {
			t.Errorf("entry %q has sequence %d, want %d", e.Data, e.Seq, want)
		}
	}
	// The first run's streams race, so only check membership and count.
	if len(got) != 7 || datas[4] != "b1\n" || datas[5] != "c1\n" || datas[6] != "c2" {
		t.Errorf("entries after resume = %q, want 4 from the first run, then b1, c1, c2", datas)
	}
	if info, err := Stat(dir); err != nil || !info.Ended || info.LastSeq != 7 {
		t.Errorf("Stat(%q) = %+v, %v, want ended at 7", dir, info, err)
	}
}

func TestRunDriverCancel(t *testing.T) {
	dir := t.TempDir()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outW.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunDriver(ctx, DriverConfig{Dir: dir}, outR, nil) }()
	outW.WriteString("before cancel\npartial")
	waitFor(t, "first entry", func() bool { info, err := Stat(dir); return err == nil && info.LastSeq == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("RunDriver after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunDriver did not return after cancel")
	}
	want := numbered(1, StreamStdout, []string{"before cancel\n", "partial"})
	if diff := cmp.Diff(want, strip(readAll(t, dir, ReadOptions{}))); diff != "" {
		t.Errorf("entries mismatch (-want +got):\n%s", diff)
	}
	if info, err := Stat(dir); err != nil || !info.Ended {
		t.Errorf("Stat(%q) = %+v, %v, want ended", dir, info, err)
	}
}

func TestRunDriverConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  DriverConfig
	}{
		{"no dir", DriverConfig{}},
		{"negative size", DriverConfig{Dir: t.TempDir(), MaxFileBytes: -1}},
		{"negative files", DriverConfig{Dir: t.TempDir(), MaxFiles: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := RunDriver(context.Background(), tc.cfg, strings.NewReader(""), strings.NewReader(""))
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("RunDriver(%+v) = %v, want ErrInvalidConfig", tc.cfg, err)
			}
		})
	}
}

// TestRunDriverLocked shows that a second driver waits for the first.
func TestRunDriverLocked(t *testing.T) {
	dir := t.TempDir()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- RunDriver(context.Background(), DriverConfig{Dir: dir}, outR, nil) }()
	outW.WriteString("held\n")
	waitFor(t, "first entry", func() bool { info, err := Stat(dir); return err == nil && info.LastSeq == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := RunDriver(ctx, DriverConfig{Dir: dir}, strings.NewReader("x\n"), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second RunDriver while the first runs = %v, want context.DeadlineExceeded", err)
	}
	outW.Close()
	if err := <-first; err != nil {
		t.Fatalf("first RunDriver = %v", err)
	}
	if err := Seal(context.Background(), dir); err != nil {
		t.Fatalf("Seal(%q) = %v", dir, err)
	}
	want := numbered(1, StreamStdout, []string{"held\n"})
	if diff := cmp.Diff(want, strip(readAll(t, dir, ReadOptions{}))); diff != "" {
		t.Errorf("entries mismatch (-want +got):\n%s", diff)
	}
}
