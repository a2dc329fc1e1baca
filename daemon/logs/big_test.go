package logs

import (
	"context"
	"crypto/sha256"
	"errors"

	"os"
	"testing"
)

// big50MB is the size of the byte-exact test, as in the acceptance test of
// StreamLogs.
const big50MB = 50_000_000

// feedPipe writes data into a new pipe and returns its read end.
func feedPipe(t testing.TB, data []byte) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		w.Write(data)
		w.Close()
	}()
	t.Cleanup(func() { r.Close() })
	return r
}

// Test50MBByteExact captures 50 MB of stdout (with some stderr alongside)
// and reads it back byte-exact, in one go and resuming after drops.
func Test50MBByteExact(t *testing.T) {
	out := genLines(50, big50MB, true)
	errs := genLines(51, 1<<20, true)
	dir := t.TempDir()
	// 50 MB in small lines needs more than the default 10 MiB × 5 once the
	// record headers are counted.
	cfg := DriverConfig{Dir: dir, MaxFileBytes: 16 << 20, MaxFiles: 8}
	if err := RunDriver(context.Background(), cfg, feedPipe(t, out), feedPipe(t, errs)); err != nil {
		t.Fatalf("RunDriver = %v", err)
	}
	wantOut, wantErr := sha256.Sum256(out), sha256.Sum256(errs)

	// Read the log in several connections, each dropped after a while and
	// resumed from the last sequence number received.
	hOut, hErr := sha256.New(), sha256.New()
	var (
		last        uint64
		connections int
		entries     uint64
	)
	drop := errors.New("drop")
	for {
		connections++
		budget := 20_000
		err := Read(context.Background(), dir, ReadOptions{AfterSequence: last}, func(b []Entry) error {
			for _, e := range b {
				if e.Seq != last+1 {
					t.Fatalf("entry %d after %d", e.Seq, last)
				}
				last = e.Seq
				entries++
				h := hOut
				if e.Stream == StreamStderr {
					h = hErr
				}
				h.Write(e.Data)
			}
			if budget -= len(b); budget < 0 {
				return drop
			}
			return nil
		})
		if err == nil {
			break
		}
		if !errors.Is(err, drop) {
			t.Fatalf("Read = %v", err)
		}
	}
	if got := [32]byte(hOut.Sum(nil)); got != wantOut {
		t.Errorf("sha256 of stdout read back = %x, want %x", got, wantOut)
	}
	if got := [32]byte(hErr.Sum(nil)); got != wantErr {
		t.Errorf("sha256 of stderr read back = %x, want %x", got, wantErr)
	}
	if want := uint64(len(splitOracle(out)) + len(splitOracle(errs))); entries != want || connections < 3 {
		t.Errorf("read %d entries over %d connections, want %d over several", entries, connections, want)
	}
}

// BenchmarkWriteRead50MB captures 50 MB of stdout and reads it back.
func BenchmarkWriteRead50MB(b *testing.B) {
	data := genLines(50, big50MB, false)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		dir := b.TempDir()
		r, w, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		go func() { w.Write(data); w.Close() }()
		if err := RunDriver(context.Background(), DriverConfig{Dir: dir, MaxFileBytes: 16 << 20, MaxFiles: 8}, r, nil); err != nil {
			b.Fatal(err)
		}
		r.Close()
		h := sha256.New()
		if err := Read(context.Background(), dir, ReadOptions{}, func(es []Entry) error {
			for _, e := range es {
				h.Write(e.Data)
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if [32]byte(h.Sum(nil)) != sha256.Sum256(data) {
			b.Fatal("read back differs")
		}
		os.RemoveAll(dir)
	}
}
