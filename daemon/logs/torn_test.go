package logs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestTornTail simulates a driver that died mid-write: readers stop at the
// last valid record, followers wait until Seal, and a restarted driver
// continues the numbering after dropping the torn bytes.
func TestTornTail(t *testing.T) {
	valid := []string{"one\n", "two\n", "three\n"}
	next := appendRecord(nil, record{seq: 4, nano: 1, kind: kindStdout, data: []byte("four\n")})
	badSum := bytes.Clone(next)
	badSum[len(badSum)-1] ^= 0xff
	stale := appendRecord(nil, record{seq: 2, nano: 1, kind: kindStdout, data: []byte("stale\n")})
	for _, tc := range []struct {
		name string
		// tail is appended to the newest segment; newSegment, when set, is
		// written as segment 4 instead.
		tail       []byte
		newSegment []byte
	}{
		{name: "partial header", tail: next[:10]},
		{name: "partial data", tail: next[:len(next)-2]},
		{name: "bad checksum", tail: badSum},
		{name: "zeroed tail", tail: make([]byte, 100)},
		{name: "out of sequence", tail: stale},
		{name: "torn segment header", newSegment: []byte(segmentMagic[:3])},
		{name: "empty new segment", newSegment: []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := openWriter(context.Background(), dir, DefaultMaxFileBytes, DefaultMaxFiles)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range valid {
				w.append(kindStdout, []byte(v), time.Now().UnixNano())
			}
			if err := w.close(); err != nil { // no end marker: a crash
				t.Fatal(err)
			}
			seg := filepath.Join(dir, segmentName(1))
			if tc.newSegment != nil {
				seg = filepath.Join(dir, segmentName(4))
				if err := os.WriteFile(seg, tc.newSegment, 0o640); err != nil {
					t.Fatal(err)
				}
			} else {
				f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.Write(tc.tail)
				f.Close()
			}

			want := numbered(1, StreamStdout, valid)
			if diff := cmp.Diff(want, strip(readAll(t, dir, ReadOptions{}))); diff != "" {
				t.Errorf("Read of torn log mismatch (-want +got):\n%s", diff)
			}
			if info, err := Stat(dir); err != nil || info.LastSeq != 3 || info.Ended {
				t.Errorf("Stat(torn log) = %+v, %v, want last 3, not ended", info, err)
			}

			// A follower waits at the torn tail until Seal ends the log.
			followed := make(chan []wantEntry, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			go func() {
				var got []Entry
				err := Read(ctx, dir, ReadOptions{Follow: true, PollInterval: time.Millisecond}, func(b []Entry) error {
					got = append(got, kept(b)...)
					return nil
				})
				if err != nil {
					got = append(got, Entry{Data: []byte(err.Error())})
				}
				followed <- strip(got)
			}()
			time.Sleep(20 * time.Millisecond)
			select {
			case <-followed:
				t.Fatal("following Read returned before Seal")
			default:
			}
			if err := Seal(context.Background(), dir); err != nil {
				t.Fatalf("Seal = %v", err)
			}
			select {
			case got := <-followed:
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("following Read mismatch (-want +got):\n%s", diff)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("following Read did not return after Seal")
			}
			if info, err := Stat(dir); err != nil || info.LastSeq != 3 || !info.Ended {
				t.Errorf("Stat(sealed log) = %+v, %v, want last 3, ended", info, err)
			}

			runDriver(t, DriverConfig{Dir: dir}, "four\n", "")
			want = append(want, wantEntry{4, StreamStdout, "four\n"})
			if diff := cmp.Diff(want, strip(readAll(t, dir, ReadOptions{}))); diff != "" {
				t.Errorf("Read after resume mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSeal covers sealing a missing log and sealing twice.
func TestSeal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "never-started")
	for range 2 {
		if err := Seal(context.Background(), dir); err != nil {
			t.Fatalf("Seal(%q) = %v", dir, err)
		}
	}
	if info, err := Stat(dir); err != nil || info != (Info{FirstSeq: 1, LastSeq: 0, Ended: true, Segments: 1, Bytes: int64(len(segmentMagic) + recordHeaderLen)}) {
		t.Errorf("Stat(sealed empty log) = %+v, %v", info, err)
	}
	if got := readAll(t, dir, ReadOptions{Follow: true}); len(got) != 0 {
		t.Errorf("Read(sealed empty log) = %v, want nothing", got)
	}
	runDriver(t, DriverConfig{Dir: dir}, "after\n", "")
	if diff := cmp.Diff(numbered(1, StreamStdout, []string{"after\n"}), strip(readAll(t, dir, ReadOptions{}))); diff != "" {
		t.Errorf("Read after resume mismatch (-want +got):\n%s", diff)
	}
}

// TestCorruptOlderSegment: an invalid record inside an older segment ends
// that segment for readers, who continue with the next one.
func TestCorruptOlderSegment(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for i := range 20 {
		lines = append(lines, strings.Repeat("x", i)+"\n")
	}
	runDriver(t, DriverConfig{Dir: dir, MaxFileBytes: 200, MaxFiles: 100}, strings.Join(lines, ""), "")
	seg := filepath.Join(dir, segmentName(1))
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	second := len(segmentMagic) + recordHeaderLen + 1 // start of entry 2
	b[second+recordHeaderLen] ^= 1
	if err := os.WriteFile(seg, b, 0o640); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, e := range readAll(t, dir, ReadOptions{}) {
		seqs = append(seqs, e.Seq)
	}
	segs := segmentFiles(t, dir)
	if len(seqs) == 0 || seqs[0] != 1 || len(seqs) != 20-(int(firstOf(t, segs, 1))-2) {
		t.Errorf("sequence numbers read = %v, want 1 then the second segment onwards (segments %v)", seqs, segs)
	}
}

// firstOf returns the first sequence number of the i-th segment.
func firstOf(t testing.TB, segs map[string]int64, i int) uint64 {
	t.Helper()
	var firsts []uint64
	for name := range segs {
		f, _ := parseSegmentName(name)
		firsts = append(firsts, f)
	}
	if len(firsts) <= i {
		t.Fatalf("only %d segments", len(firsts))
	}
	for a := range firsts {
		for b := a + 1; b < len(firsts); b++ {
			if firsts[b] < firsts[a] {
				firsts[a], firsts[b] = firsts[b], firsts[a]
			}
		}
	}
	return firsts[i]
}
