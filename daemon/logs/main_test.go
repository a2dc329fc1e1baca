package logs

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain doubles the test binary as the logging binary: run with
// BinarySubcommand as its first argument, as the containerd shim runs
// pcnoded, it is the driver in binary mode.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == BinarySubcommand {
		if err := RunBinary(context.Background(), os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "log driver:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// wantEntry is an entry without its time, for comparisons.
type wantEntry struct {
	Seq    uint64
	Stream Stream
	Data   string
}

func strip(entries []Entry) []wantEntry {
	out := make([]wantEntry, len(entries))
	for i, e := range entries {
		out[i] = wantEntry{Seq: e.Seq, Stream: e.Stream, Data: string(e.Data)}
	}
	return out
}

// splitOracle cuts one stream into entries the slow, obvious way.
func splitOracle(data []byte) []string {
	var out []string
	var cur []byte
	for _, b := range data {
		cur = append(cur, b)
		if b == '\n' || len(cur) == MaxEntryBytes {
			out = append(out, string(cur))
			cur = nil
		}
	}
	if len(cur) > 0 {
		out = append(out, string(cur))
	}
	return out
}

// numbered turns the entries of one stream into wantEntries from seq first.
func numbered(first uint64, s Stream, datas []string) []wantEntry {
	out := make([]wantEntry, len(datas))
	for i, d := range datas {
		out[i] = wantEntry{Seq: first + uint64(i), Stream: s, Data: d}
	}
	return out
}

// kept copies a batch for keeping beyond the callback: Read reuses it.
func kept(b []Entry) []Entry {
	out := make([]Entry, len(b))
	for i, e := range b {
		out[i] = e
		out[i].Data = bytes.Clone(e.Data)
	}
	return out
}

// readAll reads the log in dir with opts and no follow.
func readAll(t testing.TB, dir string, opts ReadOptions) []Entry {
	t.Helper()
	var got []Entry
	err := Read(context.Background(), dir, opts, func(b []Entry) error {
		got = append(got, kept(b)...)
		return nil
	})
	if err != nil {
		t.Fatalf("Read(%q, %+v) = %v, want nil", dir, opts, err)
	}
	return got
}

// runDriver captures the given stream contents into a new or existing log.
func runDriver(t testing.TB, cfg DriverConfig, stdout, stderr string) {
	t.Helper()
	if err := RunDriver(context.Background(), cfg, strings.NewReader(stdout), strings.NewReader(stderr)); err != nil {
		t.Fatalf("RunDriver(%+v) = %v, want nil", cfg, err)
	}
}

// genLines returns size bytes of lines with varied lengths, some of them
// longer than MaxEntryBytes, and no final newline when ragged. Line bytes are
// printable and taken from a random pool, so generating 50 MB is quick.
func genLines(seed uint64, size int, ragged bool) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pool := make([]byte, 1<<20)
	for i := range pool {
		pool[i] = byte(rng.Uint32())&0x7f | 0x20
	}
	out := make([]byte, 0, size)
	for len(out) < size {
		n := rng.IntN(200)
		switch rng.IntN(500) {
		case 0:
			n = MaxEntryBytes + rng.IntN(3*MaxEntryBytes)
		case 1:
			n = MaxEntryBytes - 1
		}
		n = min(n, size-len(out))
		off := rng.IntN(len(pool) - n)
		out = append(out, pool[off:off+n]...)
		if len(out) < size {
			out = append(out, '\n')
		}
	}
	if !ragged && len(out) > 0 {
		out[len(out)-1] = '\n'
	}
	return out
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
