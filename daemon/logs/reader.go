package logs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

const (
	// DefaultPollInterval is how often a follower looks for new entries.
	DefaultPollInterval = 100 * time.Millisecond
	// maxBatchBytes and maxBatchEntries bound one batch handed to the
	// callback.
	maxBatchBytes   = 1 << 20
	maxBatchEntries = 4096
)

// ReadOptions selects entries of a log.
type ReadOptions struct {
	// AfterSequence skips entries up to and including this sequence number
	// (resume after a dropped stream). 0: from the start.
	AfterSequence uint64
	// Since skips entries read before this time. Zero: no limit.
	Since time.Time
	// TailLines, when positive, starts at the last TailLines entries that
	// pass the other filters at the time of the call. Without Follow,
	// nothing newer is returned.
	TailLines int
	// Stream selects one stream. StreamBoth: both.
	Stream Stream
	// Follow keeps reading new entries until the log's end marker or until
	// ctx ends; a log that does not exist yet is waited for.
	Follow bool
	// PollInterval is how often a follower looks for new entries.
	// 0: DefaultPollInterval.
	PollInterval time.Duration
}

// Read calls fn with the selected entries of the log in dir, in batches in
// sequence order (at most 1 MiB of data or 4096 entries a batch). Each batch
// and its Data are fn's to keep. A log whose oldest entries were rotated away
// starts at the oldest one on disk; the caller sees the jump in sequence
// numbers. Without Follow a missing log reads as empty. Read returns fn's
// error, ctx's error when ctx ends while following, or nil at the end.
func Read(ctx context.Context, dir string, opts ReadOptions, fn func([]Entry) error) error {
	if opts.TailLines < 0 {
		return fmt.Errorf("%w: negative tail lines %d", ErrInvalidConfig, opts.TailLines)
	}
	if opts.Stream > StreamStderr {
		return fmt.Errorf("%w: unknown stream %d", ErrInvalidConfig, opts.Stream)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	r := &reader{opts: opts, fn: fn, want: opts.AfterSequence + 1}
	if !opts.Since.IsZero() {
		r.since = opts.Since.UnixNano()
	}
	for {
		root, err := os.OpenRoot(dir)
		if err == nil {
			r.root = root
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("open log directory: %w", err)
		}
		if !opts.Follow {
			return nil
		}
		if err := r.wait(ctx); err != nil {
			return err
		}
	}
	defer r.root.Close()
	return r.run(ctx)
}

// reader is the state of one Read.
type reader struct {
	root  *os.Root
	opts  ReadOptions
	fn    func([]Entry) error
	since int64 // opts.Since in Unix nanoseconds, 0 when unset

	want     uint64 // next sequence number wanted; smaller ones are skipped
	limited  bool   // stop after sequence number limit (tail without follow)
	limit    uint64
	batch    []Entry
	arena    []byte // backing store of the batch's data
	arenaLen int
}

// outcome is how reading a segment ended.
type outcome int

const (
	outcomeDone outcome = iota // the log ended, or the end of a non-following read
	outcomeNext                // a newer segment follows
	outcomeGone                // the segment vanished before it was opened
)

func (r *reader) run(ctx context.Context) error {
	if r.opts.TailLines > 0 {
		if err := r.seekTail(); err != nil {
			return err
		}
	}
	var cur uint64 // first sequence number of the segment read last; 0: none
	for {
		segs, err := listSegments(r.root)
		if err != nil {
			return err
		}
		first, ok := pickSegment(segs, cur, r.want)
		if !ok {
			if !r.opts.Follow {
				return r.deliver(ctx)
			}
			if err := r.deliver(ctx); err != nil {
				return err
			}
			if err := r.wait(ctx); err != nil {
				return err
			}
			continue
		}
		res, err := r.readSegment(ctx, first)
		if err != nil {
			return err
		}
		switch res {
		case outcomeDone:
			return r.deliver(ctx)
		case outcomeNext:
			cur = first
		}
	}
}

// pickSegment chooses, among the segments after cur, the last one that
// starts at or before want, or else the oldest one.
func pickSegment(segs []uint64, cur, want uint64) (uint64, bool) {
	var (
		pick  uint64
		found bool
	)
	for _, first := range segs {
		if first <= cur {
			continue
		}
		if !found || first <= want {
			pick, found = first, true
		}
	}
	return pick, found
}

// readSegment delivers the wanted entries of one segment.
func (r *reader) readSegment(ctx context.Context, first uint64) (outcome, error) {
	f, err := r.root.Open(segmentName(first))
	if errors.Is(err, fs.ErrNotExist) {
		return outcomeGone, nil
	}
	if err != nil {
		return 0, fmt.Errorf("open segment: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, readBufferSize)
	var (
		off      int64
		final    bool // a newer segment exists, so this one is complete
		headerOK bool
		expect   = first // sequence number of the next record
	)
	for {
		if r.limited && r.want > r.limit {
			return outcomeDone, nil
		}
		var (
			rec record
			n   int
			err error
		)
		if !headerOK {
			hdr, perr := br.Peek(len(segmentMagic))
			switch {
			case string(hdr) == segmentMagic:
				headerOK, n = true, len(segmentMagic)
			case perr == nil || errors.Is(perr, io.EOF):
				err = errShort
			default:
				return 0, fmt.Errorf("read segment: %w", perr)
			}
		} else {
			rec, n, err = peekRecord(br)
			switch {
			case err != nil:
			case rec.kind == kindEnd && rec.seq == expect-1:
				return outcomeDone, nil
			case rec.kind == kindEnd || rec.seq != expect:
				// Left over from before a truncation; the writer
				// overwrites it.
				err = fmt.Errorf("%w: sequence number %d, want %d", ErrCorrupt, rec.seq, expect)
			default:
				expect++
				if err := r.add(ctx, rec); err != nil {
					return 0, err
				}
			}
		}
		if err == nil {
			br.Discard(n)
			off += int64(n)
			continue
		}
		if !errors.Is(err, errShort) && !errors.Is(err, ErrCorrupt) {
			return 0, err
		}
		// End of the valid records: a write in progress, a torn record, or
		// the end of a finished segment.
		if final {
			return outcomeNext, nil
		}
		segs, err := listSegments(r.root)
		if err != nil {
			return 0, err
		}
		if len(segs) > 0 && segs[len(segs)-1] > first {
			final = true
		} else if !r.opts.Follow {
			return outcomeDone, nil
		} else {
			if err := r.deliver(ctx); err != nil {
				return 0, err
			}
			if err := r.wait(ctx); err != nil {
				return 0, err
			}
		}
		// Drop what was buffered: a torn tail may have been rewritten.
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return 0, fmt.Errorf("seek segment: %w", err)
		}
		br.Reset(f)
	}
}

// add keeps rec when it is wanted and passes the filters.
func (r *reader) add(ctx context.Context, rec record) error {
	if rec.seq < r.want || (r.limited && rec.seq > r.limit) {
		return nil
	}
	r.want = rec.seq + 1
	if !r.match(rec) {
		return nil
	}
	if len(r.batch) >= maxBatchEntries || r.arenaLen+len(rec.data) > len(r.arena) {
		if err := r.deliver(ctx); err != nil {
			return err
		}
	}
	if r.arena == nil {
		r.arena = make([]byte, maxBatchBytes)
	}
	start := r.arenaLen
	r.arenaLen += copy(r.arena[start:], rec.data)
	r.batch = append(r.batch, Entry{
		Seq:    rec.seq,
		Time:   time.Unix(0, rec.nano),
		Stream: Stream(rec.kind),
		Data:   r.arena[start:r.arenaLen:r.arenaLen],
	})
	return nil
}

// match applies the stream and time filters.
func (r *reader) match(rec record) bool {
	if r.opts.Stream != StreamBoth && Stream(rec.kind) != r.opts.Stream {
		return false
	}
	return r.since == 0 || rec.nano >= r.since
}

// deliver hands the batch to fn and starts a new one.
func (r *reader) deliver(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	if len(r.batch) == 0 {
		return nil
	}
	batch := r.batch
	r.batch, r.arena, r.arenaLen = nil, nil, 0
	return r.fn(batch)
}

// wait sleeps one poll interval.
func (r *reader) wait(ctx context.Context) error {
	t := time.NewTimer(r.opts.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// seekTail moves r.want to the first of the last TailLines matching
// entries, reading segments from the newest back.
func (r *reader) seekTail() error {
	segs, err := listSegments(r.root)
	if err != nil {
		return err
	}
	need := r.opts.TailLines
	for i := len(segs) - 1; i >= 0; i-- {
		seqs, last, err := r.matchingSeqs(segs[i])
		if err != nil {
			return err
		}
		if i == len(segs)-1 && !r.opts.Follow {
			r.limited, r.limit = true, last
		}
		if len(seqs) >= need {
			r.want = max(r.want, seqs[len(seqs)-need])
			return nil
		}
		need -= len(seqs)
	}
	return nil
}

// matchingSeqs lists the sequence numbers of the wanted, matching entries in
// one segment, and the segment's last sequence number (first-1 when empty).
func (r *reader) matchingSeqs(first uint64) ([]uint64, uint64, error) {
	last := first - 1
	f, err := r.root.Open(segmentName(first))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, last, nil
	}
	if err != nil {
		return nil, last, fmt.Errorf("open segment: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, readBufferSize)
	if hdr, err := br.Peek(len(segmentMagic)); err != nil || string(hdr) != segmentMagic {
		return nil, last, nil
	}
	br.Discard(len(segmentMagic))
	var seqs []uint64
	for {
		rec, n, err := peekRecord(br)
		if errors.Is(err, errShort) || errors.Is(err, ErrCorrupt) || (err == nil && (rec.kind == kindEnd || rec.seq != last+1)) {
			return seqs, last, nil
		}
		if err != nil {
			return nil, last, err
		}
		last = rec.seq
		if rec.seq >= r.want && r.match(rec) {
			seqs = append(seqs, rec.seq)
		}
		br.Discard(n)
	}
}
