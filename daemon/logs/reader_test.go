package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fixture is a finished log with known times: entry i (from 1) was read at
// base + i seconds, odd entries on stdout, even ones on stderr.
type fixture struct {
	dir     string
	base    time.Time
	entries []Entry
}

func newFixture(t testing.TB, n int, maxFileBytes int64) fixture {
	t.Helper()
	fx := fixture{dir: t.TempDir(), base: time.Unix(1700000000, 0)}
	w, err := openWriter(context.Background(), fx.dir, maxFileBytes, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		e := Entry{Seq: uint64(i), Time: fx.base.Add(time.Duration(i) * time.Second), Stream: StreamStdout, Data: []byte(fmt.Sprintf("entry %d\n", i))}
		if i%2 == 0 {
			e.Stream = StreamStderr
		}
		if err := w.append(kind(e.Stream), e.Data, e.Time.UnixNano()); err != nil {
			t.Fatal(err)
		}
		fx.entries = append(fx.entries, e)
	}
	if err := w.end(); err != nil {
		t.Fatal(err)
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	return fx
}

// oracle applies opts to the fixture's entries the obvious way.
func (fx fixture) oracle(opts ReadOptions) []Entry {
	var out []Entry
	for _, e := range fx.entries {
		if e.Seq <= opts.AfterSequence || (opts.Stream != StreamBoth && e.Stream != opts.Stream) || e.Time.Before(opts.Since) {
			continue
		}
		out = append(out, e)
	}
	if opts.TailLines > 0 && len(out) > opts.TailLines {
		out = out[len(out)-opts.TailLines:]
	}
	return out
}

func TestReadOptions(t *testing.T) {
	fx := newFixture(t, 40, 150) // a few entries a segment
	for _, tc := range []struct {
		name string
		opts ReadOptions
	}{
		{"all", ReadOptions{}},
		{"after 5", ReadOptions{AfterSequence: 5}},
		{"after last", ReadOptions{AfterSequence: 40}},
		{"after beyond", ReadOptions{AfterSequence: 99}},
		{"stdout", ReadOptions{Stream: StreamStdout}},
		{"stderr after 7", ReadOptions{Stream: StreamStderr, AfterSequence: 7}},
		{"since", ReadOptions{Since: fx.base.Add(25 * time.Second)}},
		{"since between entries", ReadOptions{Since: fx.base.Add(25*time.Second + 1)}},
		{"since before all", ReadOptions{Since: fx.base}},
		{"since after all", ReadOptions{Since: fx.base.Add(time.Hour)}},
		{"tail 3", ReadOptions{TailLines: 3}},
		{"tail 1", ReadOptions{TailLines: 1}},
		{"tail across segments", ReadOptions{TailLines: 17}},
		{"tail more than all", ReadOptions{TailLines: 1000}},
		{"tail 3 stderr", ReadOptions{TailLines: 3, Stream: StreamStderr}},
		{"tail 5 after 37", ReadOptions{TailLines: 5, AfterSequence: 37}},
		{"tail 4 since", ReadOptions{TailLines: 4, Since: fx.base.Add(38 * time.Second)}},
		{"tail 6 stdout since after", ReadOptions{TailLines: 6, Stream: StreamStdout, Since: fx.base.Add(10 * time.Second), AfterSequence: 30}},
		{"tail follow ended log", ReadOptions{TailLines: 2, Follow: true}},
		{"follow ended log", ReadOptions{AfterSequence: 38, Follow: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := readAll(t, fx.dir, tc.opts)
			if diff := cmp.Diff(fx.oracle(tc.opts), got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("Read(%+v) mismatch (-want +got):\n%s", tc.opts, diff)
			}
		})
	}
}

// TestReadResumeEverySequence resumes after every sequence number and gets
// exactly the remainder.
func TestReadResumeEverySequence(t *testing.T) {
	fx := newFixture(t, 60, 200)
	for after := uint64(0); after <= 61; after++ {
		got := readAll(t, fx.dir, ReadOptions{AfterSequence: after})
		want := fx.entries[min(after, 60):]
		if len(got) != len(want) || (len(got) > 0 && (got[0].Seq != after+1 || got[len(got)-1].Seq != 60)) {
			t.Fatalf("Read(after %d) = %d entries from %v, want %d from %d", after, len(got), firstSeq(got), len(want), after+1)
		}
		for i := range got {
			if got[i].Seq != want[i].Seq || string(got[i].Data) != string(want[i].Data) {
				t.Fatalf("Read(after %d)[%d] = %d %q, want %d %q", after, i, got[i].Seq, got[i].Data, want[i].Seq, want[i].Data)
			}
		}
	}
}

func firstSeq(es []Entry) any {
	if len(es) == 0 {
		return "nothing"
	}
	return es[0].Seq
}

func TestReadInvalidOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts ReadOptions
	}{
		{"negative tail", ReadOptions{TailLines: -1}},
		{"unknown stream", ReadOptions{Stream: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Read(context.Background(), t.TempDir(), tc.opts, func([]Entry) error { return nil })
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Read(%+v) = %v, want ErrInvalidConfig", tc.opts, err)
			}
		})
	}
}

func TestReadMissingLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "absent")
	if got := readAll(t, dir, ReadOptions{}); len(got) != 0 {
		t.Errorf("Read(missing log) = %v, want nothing", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := Read(ctx, dir, ReadOptions{Follow: true, PollInterval: time.Millisecond}, func([]Entry) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Read(missing log, follow) = %v, want context.DeadlineExceeded", err)
	}
	if _, err := Stat(dir); err == nil {
		t.Errorf("Stat(missing log) = nil error, want one")
	}
}

func TestReadCallbackError(t *testing.T) {
	fx := newFixture(t, 10, DefaultMaxFileBytes)
	stop := errors.New("stop")
	calls := 0
	err := Read(context.Background(), fx.dir, ReadOptions{}, func([]Entry) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Read with failing callback = %v after %d calls, want %v after 1", err, calls, stop)
	}
}

// TestReadBatches checks that every batch stays within BufferBytes (data
// plus EntryOverhead per entry) for long and short entries, that the
// reused buffers never corrupt entries, and that a too small buffer is
// refused.
func TestReadBatches(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("y", MaxEntryBytes-1) + "\n"
	runDriver(t, DriverConfig{Dir: dir}, strings.Repeat(long, 40)+strings.Repeat("s\n", 10000), "")
	for _, limit := range []int{0, MinBufferBytes, 1 << 20} {
		want := limit
		if want == 0 {
			want = DefaultBufferBytes
		}
		var all []Entry
		batches := 0
		err := Read(context.Background(), dir, ReadOptions{BufferBytes: limit}, func(b []Entry) error {
			batches++
			cost := 0
			for _, e := range b {
				cost += len(e.Data) + EntryOverhead
			}
			if cost > want || len(b) == 0 {
				t.Errorf("BufferBytes %d: batch of %d entries costing %d bytes, want 1..%d", limit, len(b), cost, want)
			}
			all = append(all, kept(b)...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 10040 || string(all[0].Data) != long || string(all[39].Data) != long || string(all[10039].Data) != "s\n" {
			t.Errorf("BufferBytes %d: Read gave %d entries, want 10040 intact ones", limit, len(all))
		}
		for i, e := range all {
			if e.Seq != uint64(i+1) {
				t.Fatalf("BufferBytes %d: entry %d has sequence %d", limit, i, e.Seq)
			}
		}
		t.Logf("BufferBytes %d: %d batches", limit, batches)
	}
	err := Read(context.Background(), dir, ReadOptions{BufferBytes: MinBufferBytes - 1}, func([]Entry) error { return nil })
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Read(BufferBytes %d) = %v, want ErrInvalidConfig", MinBufferBytes-1, err)
	}
}

// TestReadFollow follows a live log, with rotation, from several readers:
// one started before the log exists, one that drops its stream and resumes,
// and one that starts with a tail.
func TestReadFollow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	outData := genLines(7, 400<<10, true)
	errData := genLines(8, 100<<10, false)
	want := append(splitOracle(outData), splitOracle(errData)...)
	slices.Sort(want)

	type result struct {
		entries []Entry
		err     error
	}
	follow := func(opts ReadOptions, dropAfter int) <-chan result {
		ch := make(chan result, 1)
		go func() {
			var got []Entry
			opts.Follow, opts.PollInterval = true, time.Millisecond
			for {
				ctx, cancel := context.WithCancelCause(context.Background())
				dropped := errors.New("dropped")
				err := Read(ctx, dir, opts, func(b []Entry) error {
					got = append(got, kept(b)...)
					if dropAfter > 0 && len(got) >= dropAfter {
						dropAfter *= 3
						cancel(dropped)
						return context.Cause(ctx)
					}
					return nil
				})
				cancel(nil)
				if errors.Is(err, dropped) {
					opts.AfterSequence, opts.TailLines = got[len(got)-1].Seq, 0
					continue
				}
				ch <- result{got, err}
				return
			}
		}()
		return ch
	}
	early := follow(ReadOptions{}, 0)
	resuming := follow(ReadOptions{}, 100)

	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	var wg sync.WaitGroup
	feed := func(w *io.PipeWriter, data []byte) {
		defer wg.Done()
		for i := 0; len(data) > 0; i++ {
			n := min(len(data), 1+i*37%5000)
			w.Write(data[:n])
			data = data[n:]
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		w.Close()
	}
	driver := make(chan error, 1)
	go func() {
		driver <- RunDriver(context.Background(), DriverConfig{Dir: dir, MaxFileBytes: 32 << 10, MaxFiles: 1000}, outR, errR)
	}()
	wg.Add(2)
	go feed(outW, outData)
	go feed(errW, errData)
	waitFor(t, "log", func() bool { info, err := Stat(dir); return err == nil && info.LastSeq > 10 })
	tailing := follow(ReadOptions{TailLines: 5}, 0)
	wg.Wait()
	if err := <-driver; err != nil {
		t.Fatalf("RunDriver = %v", err)
	}
	for name, ch := range map[string]<-chan result{"early": early, "resuming": resuming, "tailing": tailing} {
		res := <-ch
		if res.err != nil {
			t.Errorf("%s follower: Read = %v", name, res.err)
			continue
		}
		got := res.entries
		for i := 1; i < len(got); i++ {
			if got[i].Seq != got[i-1].Seq+1 {
				t.Errorf("%s follower: entry %d after %d", name, got[i].Seq, got[i-1].Seq)
				break
			}
		}
		if name == "tailing" {
			if len(got) == 0 || got[len(got)-1].Seq != uint64(len(want)) || got[0].Seq < 6 {
				t.Errorf("tailing follower got %d entries from %v, want from a tail to %d", len(got), firstSeq(got), len(want))
			}
			continue
		}
		var datas []string
		for _, e := range got {
			datas = append(datas, string(e.Data))
		}
		slices.Sort(datas)
		if !slices.Equal(datas, want) || got[0].Seq != 1 {
			t.Errorf("%s follower got %d entries, want %d: the driver's entries exactly once", name, len(datas), len(want))
		}
	}
}
