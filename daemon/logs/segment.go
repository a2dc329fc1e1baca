package logs

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	segmentSuffix = ".log"
	// segmentNameLen is 20 digits and the suffix.
	segmentNameLen = 20 + len(segmentSuffix)
	lockName       = "lock"
	dirPerm        = 0o750
	filePerm       = 0o640
	// readBufferSize holds a whole record of the largest size.
	readBufferSize = 256 << 10
	// lockPollInterval is how often a waiting writer retries the lock.
	lockPollInterval = 50 * time.Millisecond
)

// segmentName returns the file name of the segment whose first entry is first.
func segmentName(first uint64) string {
	digits := strconv.FormatUint(first, 10)
	return strings.Repeat("0", 20-len(digits)) + digits + segmentSuffix
}

// parseSegmentName returns the first sequence number encoded in name.
func parseSegmentName(name string) (uint64, bool) {
	if len(name) != segmentNameLen || !strings.HasSuffix(name, segmentSuffix) {
		return 0, false
	}
	digits := name[:20]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	first, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || first == 0 {
		return 0, false
	}
	return first, true
}

// listSegments returns the first sequence numbers of the segments in root,
// ascending. Other files are ignored.
func listSegments(root *os.Root) ([]uint64, error) {
	d, err := root.Open(".")
	if err != nil {
		return nil, wrap("open log directory", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, wrap("list log directory", err)
	}
	var firsts []uint64
	for _, name := range names {
		if first, ok := parseSegmentName(name); ok {
			firsts = append(firsts, first)
		}
	}
	slices.Sort(firsts)
	return firsts, nil
}

// lockLog takes the exclusive lock of the log in root, waiting until it is
// free or ctx ends. The lock lasts until the returned file is closed or the
// process dies.
func lockLog(ctx context.Context, root *os.Root) (*os.File, error) {
	f, err := root.OpenFile(lockName, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, wrap("open log lock", err)
	}
	for {
		err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, wrap("lock log", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, wrap("wait for log lock held by another writer", context.Cause(ctx))
		case <-time.After(lockPollInterval):
		}
	}
}

func flock(f *os.File, how int) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := sc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if !errors.Is(ferr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

// segmentScan is what scanSegment found in one segment.
type segmentScan struct {
	// headerOK is false when the file is shorter than the segment header
	// (a creation torn by a crash).
	headerOK bool
	// entries counts the valid entries; lastSeq is the last one's number.
	entries int
	lastSeq uint64
	// ended reports an end marker at endOff.
	ended  bool
	endOff int64
	// validEnd is the offset after the last valid record.
	validEnd int64
	// size is the file size when scanned.
	size int64
}

// scanSegment reads the segment f, whose first entry must be first, up to
// the first record that is incomplete, invalid or out of sequence.
func scanSegment(f *os.File, first uint64) (segmentScan, error) {
	fi, err := f.Stat()
	if err != nil {
		return segmentScan{}, wrap("stat segment", err)
	}
	s := segmentScan{size: fi.Size()}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return s, wrap("seek segment", err)
	}
	br := bufio.NewReaderSize(f, readBufferSize)
	hdr, err := br.Peek(len(segmentMagic))
	if err != nil {
		if errors.Is(err, io.EOF) && string(hdr) == segmentMagic[:len(hdr)] {
			return s, nil
		}
		if errors.Is(err, io.EOF) {
			return s, corrupt("bad segment header " + strconv.Quote(string(hdr)))
		}
		return s, wrap("read segment", err)
	}
	if string(hdr) != segmentMagic {
		return s, corrupt("bad segment header " + strconv.Quote(string(hdr)))
	}
	s.headerOK = true
	off := int64(len(segmentMagic))
	br.Discard(len(segmentMagic))
	s.validEnd = off
	want := first
	for {
		rec, n, err := peekRecord(br)
		if err != nil {
			if errors.Is(err, errShort) || errors.Is(err, ErrCorrupt) {
				return s, nil
			}
			return s, err
		}
		switch rec.kind {
		case kindEnd:
			if rec.seq != want-1 {
				return s, nil
			}
			s.ended, s.endOff = true, off
			s.validEnd = off + int64(n)
			return s, nil
		default:
			if rec.seq != want {
				return s, nil
			}
			s.entries++
			s.lastSeq = rec.seq
			want++
		}
		br.Discard(n)
		off += int64(n)
		s.validEnd = off
	}
}

// peekRecord decodes the next record in br without consuming it; the
// record's data aliases br's buffer until the next read. It returns errShort
// when br ends inside the record.
func peekRecord(br *bufio.Reader) (record, int, error) {
	hdr, err := br.Peek(recordHeaderLen)
	if err != nil && len(hdr) < recordHeaderLen {
		if errors.Is(err, io.EOF) {
			return record{}, 0, errShort
		}
		return record{}, 0, wrap("read log", err)
	}
	n, err := recordLen(hdr)
	if err != nil {
		return record{}, 0, err
	}
	b, err := br.Peek(n)
	if err != nil && len(b) < n {
		if errors.Is(err, io.EOF) {
			return record{}, 0, errShort
		}
		return record{}, 0, wrap("read log", err)
	}
	return decodeRecord(b)
}
