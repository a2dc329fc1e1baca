package logs

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"
)

const writeBufferSize = 256 << 10

// writer appends records to a log directory. It holds the log's lock from
// openWriter until close. It is not safe for concurrent use.
type writer struct {
	root         *os.Root
	lock         *os.File
	maxFileBytes int64
	maxFiles     int

	segs []uint64 // first sequence numbers of the segments, ascending
	f    *os.File // newest segment
	bw   *bufio.Writer
	size int64 // bytes in f, buffered ones included

	next   uint64 // sequence number of the next entry
	ended  bool   // an end marker is the last record
	endOff int64  // its offset in f

	hdr [recordHeaderLen]byte
}

// openWriter locks the log in dir (creating dir when missing), drops a torn
// tail of the newest segment and positions after its last valid record. An
// end marker found there is kept; resume removes it.
func openWriter(ctx context.Context, dir string, maxFileBytes int64, maxFiles int) (_ *writer, err error) {
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, wrap("create log directory", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, wrap("open log directory", err)
	}
	w := &writer{root: root, maxFileBytes: maxFileBytes, maxFiles: maxFiles}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	if w.lock, err = lockLog(ctx, root); err != nil {
		return nil, err
	}
	if w.segs, err = listSegments(root); err != nil {
		return nil, err
	}
	if len(w.segs) == 0 {
		w.next = 1
		return w, w.create()
	}
	newest := w.segs[len(w.segs)-1]
	if w.f, err = root.OpenFile(segmentName(newest), os.O_RDWR, 0); err != nil {
		return nil, wrap("open newest segment", err)
	}
	s, err := scanSegment(w.f, newest)
	if err != nil {
		return nil, wrap("segment "+segmentName(newest), err)
	}
	w.next = newest + uint64(s.entries)
	w.ended, w.endOff = s.ended, s.endOff
	end := s.validEnd
	if !s.headerOK {
		end = 0
	}
	if end != s.size {
		if err := w.f.Truncate(end); err != nil {
			return nil, wrap("drop torn tail of segment", err)
		}
	}
	if _, err := w.f.Seek(end, io.SeekStart); err != nil {
		return nil, wrap("seek segment", err)
	}
	w.bw = bufio.NewWriterSize(w.f, writeBufferSize)
	w.size = end
	if !s.headerOK {
		w.bw.WriteString(segmentMagic)
		w.size = int64(len(segmentMagic))
	}
	return w, nil
}

// resume makes the log writable again after an end marker.
func (w *writer) resume() error {
	if !w.ended {
		return nil
	}
	if err := w.bw.Flush(); err != nil {
		return wrap("write log", err)
	}
	if err := w.f.Truncate(w.endOff); err != nil {
		return wrap("remove end marker", err)
	}
	if _, err := w.f.Seek(w.endOff, io.SeekStart); err != nil {
		return wrap("seek segment", err)
	}
	w.size, w.ended = w.endOff, false
	return nil
}

// create starts the segment for w.next and makes it the newest.
func (w *writer) create() error {
	f, err := w.root.OpenFile(segmentName(w.next), os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return wrap("create segment", err)
	}
	w.f = f
	if w.bw == nil {
		w.bw = bufio.NewWriterSize(f, writeBufferSize)
	} else {
		w.bw.Reset(f)
	}
	w.bw.WriteString(segmentMagic)
	w.size = int64(len(segmentMagic))
	if len(w.segs) == 0 || w.segs[len(w.segs)-1] != w.next {
		w.segs = append(w.segs, w.next)
	}
	return nil
}

// rotate finishes the newest segment, starts the next one and removes the
// oldest segments beyond maxFiles.
func (w *writer) rotate() error {
	if err := w.bw.Flush(); err != nil {
		return wrap("write log", err)
	}
	if err := w.f.Close(); err != nil {
		return wrap("close segment", err)
	}
	w.f = nil
	if err := w.create(); err != nil {
		return err
	}
	for len(w.segs) > w.maxFiles {
		if err := w.root.Remove(segmentName(w.segs[0])); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return wrap("remove oldest segment", err)
		}
		w.segs = w.segs[1:]
	}
	return nil
}

// append buffers one entry with the next sequence number.
func (w *writer) append(k kind, data []byte, nano int64) error {
	if w.ended {
		return errEnded
	}
	n := int64(recordHeaderLen + len(data))
	if w.size > int64(len(segmentMagic)) && w.size+n > w.maxFileBytes {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	record{seq: w.next, nano: nano, kind: k, data: data}.putHeader(w.hdr[:])
	w.bw.Write(w.hdr[:])
	if _, err := w.bw.Write(data); err != nil {
		return wrap("write log", err)
	}
	w.size += n
	w.next++
	return nil
}

// flush hands buffered records to the kernel, where readers see them.
func (w *writer) flush() error {
	if err := w.bw.Flush(); err != nil {
		return wrap("write log", err)
	}
	return nil
}

// end appends the end marker unless there is one, and syncs the segment.
func (w *writer) end() error {
	if !w.ended {
		record{seq: w.next - 1, nano: time.Now().UnixNano(), kind: kindEnd}.putHeader(w.hdr[:])
		w.bw.Write(w.hdr[:])
		w.endOff = w.size
		w.size += recordHeaderLen
		w.ended = true
	}
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return wrap("sync log", err)
	}
	return nil
}

// close flushes, closes the files and releases the lock.
func (w *writer) close() error {
	var errs []error
	if w.f != nil {
		if w.bw != nil {
			errs = append(errs, w.flush())
		}
		errs = append(errs, w.f.Close())
		w.f = nil
	}
	if w.lock != nil {
		errs = append(errs, w.lock.Close())
		w.lock = nil
	}
	errs = append(errs, w.root.Close())
	return errors.Join(errs...)
}

// Seal marks the log in dir as complete, so followers finish: it waits for
// the log's lock (held by a running driver until it has sealed the log
// itself), drops a torn tail and appends the end marker unless one is there.
// The daemon calls it after deleting a task in containerd, for the case of a
// driver that was killed before it could finish. A missing log is created
// empty and sealed.
func Seal(ctx context.Context, dir string) error {
	w, err := openWriter(ctx, dir, DefaultMaxFileBytes, DefaultMaxFiles)
	if err != nil {
		return wrap("seal log", err)
	}
	err = w.end()
	return errors.Join(err, w.close())
}
