package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"testing"
	"time"

	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage/pattern"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// e2eLogCheck follows a task's log entries as they arrive, over one or
// more streams: sequences must run 1, 2, 3, … without gaps or duplicates;
// stdout is hashed.
type e2eLogCheck struct {
	next    uint64 // sequence expected next
	bytes   int64  // stdout bytes
	entries int
	stderr  []byte
	h       hash.Hash
	err     error // first problem
}

func newE2ELogCheck() *e2eLogCheck { return &e2eLogCheck{next: 1, h: sha256.New()} }

func (c *e2eLogCheck) feed(es []*pcnodev1.LogEntry) {
	for _, e := range es {
		if c.err == nil && e.GetSequence() != c.next {
			kind := "gap"
			if e.GetSequence() < c.next {
				kind = "duplicate"
			}
			c.err = fmt.Errorf("%s: entry %d has sequence %d, want %d", kind, c.entries, e.GetSequence(), c.next)
		}
		if c.err == nil && e.GetTime() == nil {
			c.err = fmt.Errorf("entry with sequence %d has no time", e.GetSequence())
		}
		c.next = e.GetSequence() + 1
		c.entries++
		switch e.GetStream() {
		case pcnodev1.LogStream_LOG_STREAM_STDOUT:
			c.h.Write(e.GetData())
			c.bytes += int64(len(e.GetData()))
		case pcnodev1.LogStream_LOG_STREAM_STDERR:
			c.stderr = append(c.stderr, e.GetData()...)
		default:
			if c.err == nil {
				c.err = fmt.Errorf("entry with sequence %d has stream %v", e.GetSequence(), e.GetStream())
			}
		}
	}
}

func (c *e2eLogCheck) sum() string { return hex.EncodeToString(c.h.Sum(nil)) }

// check fails t unless the entries seen were exactly size pattern bytes on
// stdout, in order, without gaps or duplicates.
func (c *e2eLogCheck) check(t *testing.T, what string, size int64) {
	t.Helper()
	if c.err != nil {
		t.Errorf("%s: %v", what, c.err)
	}
	if c.bytes != size || c.sum() != pattern.SHA256(size) {
		t.Errorf("%s: stdout = %d bytes sha256 %s, want %d bytes sha256 %s", what, c.bytes, c.sum(), size, pattern.SHA256(size))
	}
	if len(c.stderr) != 0 {
		t.Errorf("%s: stderr = %q, want none", what, c.stderr)
	}
}

// TestIntegrationLargeLog runs a task writing 50 MB to stdout: StreamLogs
// returns it byte-exact, and a stream dropped midway and resumed from the
// last sequence seen gives neither duplicates nor gaps, while the task runs
// and after it has finished.
func TestIntegrationLargeLog(t *testing.T) {
	const (
		size = 50_000_000 // "50M": 50 MB of the pattern
		drop = 10_000_000 // drop the first stream after this much
	)
	d := daemontest.Start(t, daemontest.Options{})
	img := e2eTestImage(t, d).GetName()
	task := d.Submit(t, e2eSpec(img, "stdout", "BYTES=50M"))
	id := task.GetId()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	t.Run("follow, drop and resume while running", func(t *testing.T) {
		c := newE2ELogCheck()
		var last uint64
		_, err := d.StreamLogs(ctx, &pcnodev1.StreamLogsRequest{TaskId: id, Follow: true}, func(es []*pcnodev1.LogEntry) bool {
			c.feed(es)
			if len(es) > 0 {
				last = es[len(es)-1].GetSequence()
			}
			return c.bytes < drop // false: cancel the stream midway
		})
		if err != nil {
			t.Fatalf("StreamLogs(follow) = %v", err)
		}
		if c.bytes < drop {
			t.Fatalf("first StreamLogs(follow) ended after %d bytes, before the drop at %d", c.bytes, drop)
		}
		t.Logf("dropped the stream after sequence %d (%d bytes)", last, c.bytes)
		_, err = d.StreamLogs(ctx, &pcnodev1.StreamLogsRequest{TaskId: id, Follow: true, AfterSequence: last}, func(es []*pcnodev1.LogEntry) bool {
			c.feed(es)
			return true
		})
		if err != nil {
			t.Fatalf("StreamLogs(follow, after_sequence %d) = %v", last, err)
		}
		c.check(t, "followed log (dropped and resumed)", size)
	})

	final := d.WaitTask(t, id, 0)
	e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)

	var total uint64
	t.Run("whole log after the end", func(t *testing.T) {
		c := newE2ELogCheck()
		if _, err := d.StreamLogs(ctx, &pcnodev1.StreamLogsRequest{TaskId: id}, func(es []*pcnodev1.LogEntry) bool {
			c.feed(es)
			return true
		}); err != nil {
			t.Fatalf("StreamLogs() = %v", err)
		}
		c.check(t, "whole log", size)
		total = c.next - 1
	})

	t.Run("drop and resume after the end", func(t *testing.T) {
		c := newE2ELogCheck()
		var last uint64
		if _, err := d.StreamLogs(ctx, &pcnodev1.StreamLogsRequest{TaskId: id}, func(es []*pcnodev1.LogEntry) bool {
			c.feed(es)
			if len(es) > 0 {
				last = es[len(es)-1].GetSequence()
			}
			return c.bytes < 3*drop
		}); err != nil {
			t.Fatalf("StreamLogs() = %v", err)
		}
		if _, err := d.StreamLogs(ctx, &pcnodev1.StreamLogsRequest{TaskId: id, AfterSequence: last}, func(es []*pcnodev1.LogEntry) bool {
			c.feed(es)
			return true
		}); err != nil {
			t.Fatalf("StreamLogs(after_sequence %d) = %v", last, err)
		}
		c.check(t, "log dropped and resumed after the end", size)
	})

	t.Run("tail and stream filter", func(t *testing.T) {
		if total == 0 {
			t.Skip("whole-log read failed")
		}
		tail, err := d.StreamLogs(ctx, &pcnodev1.StreamLogsRequest{TaskId: id, TailLines: 3}, nil)
		if err != nil {
			t.Fatalf("StreamLogs(tail_lines 3) = %v", err)
		}
		var seqs []uint64
		for _, e := range tail {
			seqs = append(seqs, e.GetSequence())
		}
		if want := []uint64{total - 2, total - 1, total}; fmt.Sprint(seqs) != fmt.Sprint(want) {
			t.Errorf("StreamLogs(tail_lines 3) sequences = %v, want %v", seqs, want)
		}
		if want := pattern.Bytes(size)[size-3*pattern.LineLen:]; string(daemontest.Output(tail, pcnodev1.LogStream_LOG_STREAM_STDOUT)) != string(want) {
			t.Errorf("StreamLogs(tail_lines 3) data = %q, want the last 3 pattern lines %q", daemontest.Output(tail, 0), want)
		}
		errs, err := d.StreamLogs(ctx, &pcnodev1.StreamLogsRequest{TaskId: id, Stream: pcnodev1.LogStream_LOG_STREAM_STDERR}, nil)
		if err != nil || len(errs) != 0 {
			t.Errorf("StreamLogs(stderr only) = %d entries, %v; want none", len(errs), err)
		}
	})
}
