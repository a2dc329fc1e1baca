package logs

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// segmentFiles lists the segment files in dir with their sizes.
func segmentFiles(t testing.TB, dir string) map[string]int64 {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, de := range des {
		if _, ok := parseSegmentName(de.Name()); ok {
			fi, err := de.Info()
			if err != nil {
				t.Fatal(err)
			}
			out[de.Name()] = fi.Size()
		}
	}
	return out
}

func TestRotation(t *testing.T) {
	line := func(i int) string { return fmt.Sprintf("line %03d\n", i) } // 9 bytes, 34 on disk
	var all []string
	for i := 1; i <= 100; i++ {
		all = append(all, line(i))
	}
	for _, tc := range []struct {
		name      string
		cfg       DriverConfig
		runs      int // the lines are fed over this many driver runs
		wantFirst uint64
		wantSegs  int
	}{
		// 8 records fit after the 8-byte header: 8+8*34 = 280 <= 300.
		{"keep three", DriverConfig{MaxFileBytes: 300, MaxFiles: 3}, 1, 81, 3},
		{"keep three over restarts", DriverConfig{MaxFileBytes: 300, MaxFiles: 3}, 4, 0, 3},
		{"keep one", DriverConfig{MaxFileBytes: 300, MaxFiles: 1}, 1, 97, 1},
		{"record larger than a segment", DriverConfig{MaxFileBytes: 10, MaxFiles: 4}, 1, 97, 4},
		{"keep all", DriverConfig{MaxFileBytes: 300, MaxFiles: 100}, 1, 1, 13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Dir = t.TempDir()
			per := len(all) / tc.runs
			for r := range tc.runs {
				runDriver(t, tc.cfg, strings.Join(all[r*per:(r+1)*per], ""), "")
			}
			files := segmentFiles(t, tc.cfg.Dir)
			if len(files) != tc.wantSegs {
				t.Errorf("segments = %v, want %d of them", files, tc.wantSegs)
			}
			for name, size := range files {
				if size > max(tc.cfg.MaxFileBytes, int64(len(segmentMagic)+recordHeaderLen+9+recordHeaderLen)) {
					t.Errorf("segment %s has %d bytes, cap %d", name, size, tc.cfg.MaxFileBytes)
				}
			}
			info, err := Stat(tc.cfg.Dir)
			if err != nil {
				t.Fatalf("Stat = %v", err)
			}
			if tc.wantFirst != 0 && info.FirstSeq != tc.wantFirst {
				t.Errorf("Stat.FirstSeq = %d, want %d", info.FirstSeq, tc.wantFirst)
			}
			if info.LastSeq != 100 || !info.Ended || info.Segments != tc.wantSegs {
				t.Errorf("Stat = %+v, want last 100, ended, %d segments", info, tc.wantSegs)
			}
			// Whatever is left is the newest entries, numbered without gaps;
			// asking for older ones starts at the oldest left.
			want := numbered(info.FirstSeq, StreamStdout, all[info.FirstSeq-1:])
			for _, after := range []uint64{0, info.FirstSeq - 1} {
				got := strip(readAll(t, tc.cfg.Dir, ReadOptions{AfterSequence: after}))
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Read(after %d) mismatch (-want +got):\n%s", after, diff)
				}
			}
		})
	}
}

// TestRotationWhileReading rotates segments away under a slow reader: it
// must continue at the oldest entry left, in order, without duplicates, and
// be told exactly which entries it missed, between the entries around them.
func TestRotationWhileReading(t *testing.T) {
	dir := t.TempDir()
	w, err := openWriter(context.Background(), dir, 300, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 10; i++ {
		w.append(kindStdout, []byte(fmt.Sprintf("line %03d\n", i)), 0)
	}
	w.flush()
	var got []string
	seen := 0
	opts := ReadOptions{Follow: true, PollInterval: 1, OnGap: func(g Gap) error {
		got = append(got, fmt.Sprintf("gap %d-%d", g.First, g.Last))
		return nil
	}}
	err = Read(context.Background(), dir, opts, func(b []Entry) error {
		for _, e := range b {
			if want := fmt.Sprintf("line %03d\n", e.Seq); string(e.Data) != want {
				t.Errorf("entry %d = %q, want %q", e.Seq, e.Data, want)
			}
			got = append(got, fmt.Sprint(e.Seq))
		}
		if seen += len(b); seen == 10 {
			// The reader is inside the second segment (9..16); rotate
			// out everything before segment 25 (25..32, 33..40 stay).
			for i := 11; i <= 40; i++ {
				w.append(kindStdout, []byte(fmt.Sprintf("line %03d\n", i)), 0)
			}
			if err := w.end(); err != nil {
				t.Error(err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Read = %v", err)
	}
	w.close()
	var want []string
	for i := 1; i <= 16; i++ { // the open second segment is read to its end
		want = append(want, fmt.Sprint(i))
	}
	want = append(want, "gap 17-24")
	for i := 25; i <= 40; i++ {
		want = append(want, fmt.Sprint(i))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries and gaps read mismatch (-want +got):\n%s", diff)
	}
}

// TestReadGaps reads a log whose entries 1..24 were rotated away, with
// the options that decide whether the missing entries were wanted.
func TestReadGaps(t *testing.T) {
	dir := t.TempDir()
	w, err := openWriter(context.Background(), dir, 300, 2)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Unix(1_700_000_000, 0)
	for i := 1; i <= 40; i++ {
		w.append(kindStdout, []byte(fmt.Sprintf("line %03d\n", i)), base.Add(time.Duration(i)*time.Second).UnixNano())
	}
	if err := w.end(); err != nil {
		t.Fatal(err)
	}
	w.close()
	tests := []struct {
		name  string
		opts  ReadOptions
		gaps  []Gap
		first uint64 // first entry delivered
	}{
		{"from the start", ReadOptions{}, []Gap{{1, 24}}, 25},
		{"resume inside the rotated part", ReadOptions{AfterSequence: 9}, []Gap{{10, 24}}, 25},
		{"resume at the last rotated entry", ReadOptions{AfterSequence: 23}, []Gap{{24, 24}}, 25},
		{"resume after the rotated part", ReadOptions{AfterSequence: 24}, nil, 25},
		{"tail within what is left", ReadOptions{TailLines: 5}, nil, 36},
		{"tail longer than what is left", ReadOptions{TailLines: 30}, []Gap{{11, 24}}, 25},
		{"tail longer than the log", ReadOptions{TailLines: 50}, []Gap{{1, 24}}, 25},
		{"tail of stderr longer than what is left", ReadOptions{TailLines: 30, Stream: StreamStderr}, []Gap{{1, 24}}, 0},
		{"since after the oldest entry left", ReadOptions{Since: base.Add(30 * time.Second)}, nil, 30},
		{"since before the oldest entry left", ReadOptions{Since: base.Add(3 * time.Second)}, []Gap{{1, 24}}, 25},
		{"stderr only", ReadOptions{Stream: StreamStderr}, []Gap{{1, 24}}, 0},
		{"following", ReadOptions{Follow: true, PollInterval: 1}, []Gap{{1, 24}}, 25},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var gaps []Gap
			var first uint64
			tc.opts.OnGap = func(g Gap) error {
				if first != 0 {
					t.Errorf("gap %+v after entry %d, want it before every entry", g, first)
				}
				gaps = append(gaps, g)
				return nil
			}
			err := Read(context.Background(), dir, tc.opts, func(b []Entry) error {
				if first == 0 {
					first = b[0].Seq
				}
				return nil
			})
			if err != nil {
				t.Fatalf("Read = %v", err)
			}
			if diff := cmp.Diff(tc.gaps, gaps); diff != "" {
				t.Errorf("gaps mismatch (-want +got):\n%s", diff)
			}
			if first != tc.first {
				t.Errorf("first entry %d, want %d", first, tc.first)
			}
		})
	}
}
