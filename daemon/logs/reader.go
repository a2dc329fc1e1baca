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
	// WakePollInterval is how often a woken follower (ReadOptions.Wake)
	// looks, for WakePollFor after the wake.
	WakePollInterval = 5 * time.Millisecond
	WakePollFor      = 10 * time.Second
	// DefaultBufferBytes is ReadOptions.BufferBytes when it is 0.
	DefaultBufferBytes = 256 << 10
	// MinBufferBytes is the smallest ReadOptions.BufferBytes: one entry of
	// the largest size with its overhead.
	MinBufferBytes = MaxEntryBytes + EntryOverhead
	// EntryOverhead is what each entry of a batch is charged on top of its
	// data against ReadOptions.BufferBytes: the Entry itself and what a
	// caller typically builds from it (a protobuf message with a
	// timestamp), so that a batch of many short lines is bounded as well as
	// one of long ones.
	EntryOverhead = 128
	// readerBufferSize is the reader's file buffer: it holds a whole record
	// of the largest size, which peekRecord needs.
	readerBufferSize = (MaxEntryBytes + recordHeaderLen + 4095) &^ 4095
	// firstArenaBytes is the data buffer a reader starts with; it doubles,
	// up to BufferBytes, while batches fill it.
	firstArenaBytes = 16 << 10
)

// Gap is a run of entries a reader will never deliver because they were
// rotated away before it reached them: First through Last, inclusive.
type Gap struct {
	First, Last uint64
}

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
	// Wake, when set and closed, has a follower look for new entries at
	// once and then every WakePollInterval for WakePollFor, before it
	// polls at PollInterval again. The daemon closes it when the log is
	// about to end (the task's process has exited and containerd is
	// deleting it, which ends the log driver's copy), so that a follower
	// sees the end marker within milliseconds of its writing, not a poll
	// interval later.
	Wake <-chan struct{}
	// BufferBytes bounds one batch: the sum over its entries of their data
	// and EntryOverhead. 0: DefaultBufferBytes; at least MinBufferBytes.
	// A reader holds one batch, its growing data buffer and a file buffer
	// of about MaxEntryBytes, nothing more, however far behind fn is.
	BufferBytes int
	// OnGap, when set, is called with each run of wanted entries that were
	// rotated away before the reader reached them, in order: every entry
	// before the gap has been handed to fn, and the next ones handed to fn
	// follow it. Filters cannot be applied to entries that are gone, except
	// that a gap followed by an entry older than Since is not reported
	// (times only grow, so the missed entries were older still). When
	// OnGap is nil, gaps show only as jumps in sequence numbers.
	OnGap func(Gap) error
}

// Read calls fn with the selected entries of the log in dir, in batches in
// sequence order, each bounded by opts.BufferBytes. A batch and its Data
// are valid only until fn returns: the reader reuses them, so fn copies what
// it keeps. Entries that were rotated away before the reader reached them
// are reported to opts.OnGap. Without Follow a missing log reads as empty.
// Read returns fn's (or OnGap's) error, ctx's error when ctx ends while
// following, or nil at the end.
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
	switch {
	case opts.BufferBytes == 0:
		opts.BufferBytes = DefaultBufferBytes
	case opts.BufferBytes < MinBufferBytes:
		return fmt.Errorf("%w: buffer of %d bytes, at least %d", ErrInvalidConfig, opts.BufferBytes, MinBufferBytes)
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

	want    uint64 // next sequence number wanted; smaller ones are skipped
	limited bool   // stop after sequence number limit (tail without follow)
	limit   uint64
	gap     *Gap // missed entries not yet reported: reported before the next entry

	br        *bufio.Reader // reused for every segment
	batch     []Entry       // reused: valid until fn returns
	batchCost int           // data + EntryOverhead of the batch's entries
	arena     []byte        // backing store of the batch's data; len is what is used

	wokeAt time.Time // when opts.Wake was closed; zero before
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
		if ok && first > r.want && (!r.limited || r.want <= r.limit) {
			// Every segment holding r.want onwards up to first was
			// removed by rotation before this reader got to it.
			r.missed(r.want, first-1)
		}
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
			if r.gap != nil && r.since == 0 {
				// The log ended right after the gap.
				return r.reportGap(ctx)
			}
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
	if r.br == nil {
		r.br = bufio.NewReaderSize(f, readerBufferSize)
	} else {
		r.br.Reset(f)
	}
	br := r.br
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

// missed records that entries first..last are gone; a gap already pending
// (none of its successors seen yet) is extended.
func (r *reader) missed(first, last uint64) {
	if r.gap != nil {
		r.gap.Last = last
		return
	}
	r.gap = &Gap{First: first, Last: last}
}

// reportGap delivers the batch so far, then the pending gap.
func (r *reader) reportGap(ctx context.Context) error {
	g := *r.gap
	r.gap = nil
	if err := r.deliver(ctx); err != nil {
		return err
	}
	if r.opts.OnGap == nil {
		return nil
	}
	return r.opts.OnGap(g)
}

// add keeps rec when it is wanted and passes the filters.
func (r *reader) add(ctx context.Context, rec record) error {
	if rec.seq < r.want || (r.limited && rec.seq > r.limit) {
		return nil
	}
	r.want = rec.seq + 1
	if r.gap != nil {
		if r.since != 0 && rec.nano < r.since {
			r.gap = nil // the missed entries were older than Since too
		} else if err := r.reportGap(ctx); err != nil {
			return err
		}
	}
	if !r.match(rec) {
		return nil
	}
	cost := len(rec.data) + EntryOverhead
	full := len(r.arena)+len(rec.data) > cap(r.arena)
	if len(r.batch) > 0 && (full || r.batchCost+cost > r.opts.BufferBytes) {
		if err := r.deliver(ctx); err != nil {
			return err
		}
	}
	if len(r.arena)+len(rec.data) > cap(r.arena) {
		// Empty batch here: grow the data buffer for this entry, and
		// double it while batches fill it, up to the bound.
		n := max(firstArenaBytes, len(rec.data))
		if full && cap(r.arena) > 0 {
			n = max(n, 2*cap(r.arena))
		}
		r.arena = make([]byte, 0, min(n, r.opts.BufferBytes))
	}
	start := len(r.arena)
	r.arena = append(r.arena, rec.data...)
	r.batchCost += cost
	r.batch = append(r.batch, Entry{
		Seq:    rec.seq,
		Time:   time.Unix(0, rec.nano),
		Stream: Stream(rec.kind),
		Data:   r.arena[start:len(r.arena):len(r.arena)],
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
	err := r.fn(r.batch)
	clear(r.batch) // drop references to the data for the collector
	r.batch, r.arena, r.batchCost = r.batch[:0], r.arena[:0], 0
	return err
}

// wait sleeps one poll interval: WakePollInterval for WakePollFor after
// opts.Wake was closed, else opts.PollInterval, or until opts.Wake is
// closed.
func (r *reader) wait(ctx context.Context) error {
	d := r.opts.PollInterval
	if !r.wokeAt.IsZero() && time.Since(r.wokeAt) < WakePollFor {
		d = min(d, WakePollInterval)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	case <-r.opts.Wake:
		r.opts.Wake, r.wokeAt = nil, time.Now()
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
	var newest uint64 // last sequence number of the log
	for i := len(segs) - 1; i >= 0; i-- {
		seqs, last, err := r.matchingSeqs(segs[i])
		if err != nil {
			return err
		}
		if i == len(segs)-1 {
			newest = last
			if !r.opts.Follow {
				r.limited, r.limit = true, last
			}
		}
		if len(seqs) >= need {
			r.want = max(r.want, seqs[len(seqs)-need])
			return nil
		}
		need -= len(seqs)
	}
	// Fewer entries left than asked for. Without filters the tail began at
	// newest-TailLines+1, so only the rotated entries from there on are
	// wanted (and reported as missed); with filters that is unknown.
	if r.opts.Stream == StreamBoth && r.since == 0 && newest >= uint64(r.opts.TailLines) {
		r.want = max(r.want, newest-uint64(r.opts.TailLines)+1)
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
	br := bufio.NewReaderSize(f, readerBufferSize)
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
