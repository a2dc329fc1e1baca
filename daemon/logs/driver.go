package logs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultMaxFileBytes is the default size of a segment.
	DefaultMaxFileBytes = 10 << 20
	// DefaultMaxFiles is the default number of segments kept.
	DefaultMaxFiles = 5
	// cancelGrace is how long RunDriver waits for blocked reads after its
	// context ends.
	cancelGrace = time.Second
)

// DriverConfig configures a log driver.
type DriverConfig struct {
	// Dir is the log directory; it is created when missing.
	Dir string
	// MaxFileBytes caps a segment's size. 0: DefaultMaxFileBytes.
	MaxFileBytes int64
	// MaxFiles is how many segments are kept. 0: DefaultMaxFiles.
	MaxFiles int
	// Logger receives the driver's own problems. nil: discard.
	Logger Logger
}

// Logger is what a driver reports its own problems to; *slog.Logger is one.
// The package does not import log/slog, so that the logging binary
// (cmd/pcnode-logd) stays small.
type Logger interface {
	Warn(msg string, args ...any)
	Error(msg string, args ...any)
}

// discardLogger is the Logger of a DriverConfig without one.
type discardLogger struct{}

func (discardLogger) Warn(string, ...any)  {}
func (discardLogger) Error(string, ...any) {}

// withDefaults validates c and fills in defaults.
func (c DriverConfig) withDefaults() (DriverConfig, error) {
	if c.Dir == "" {
		return c, invalid("log directory is empty")
	}
	if c.MaxFileBytes < 0 || c.MaxFiles < 0 {
		return c, invalid("negative limit (max file bytes " + itoa(c.MaxFileBytes) + ", max files " + itoa(c.MaxFiles) + ")")
	}
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = DefaultMaxFileBytes
	}
	if c.MaxFiles == 0 {
		c.MaxFiles = DefaultMaxFiles
	}
	if c.Logger == nil {
		c.Logger = discardLogger{}
	}
	return c, nil
}

// RunDriver captures stdout and stderr into the log in cfg.Dir until both
// reach end of file, then writes the end marker. Both streams are read
// concurrently; entries are numbered in the order they are read, continuing
// the numbers already in the log. When ctx ends first, RunDriver stops reading
// (readers with SetReadDeadline, such as pipes, are interrupted; others are
// abandoned after a second), seals the log with what it has and returns the
// context's error.
func RunDriver(ctx context.Context, cfg DriverConfig, stdout, stderr io.Reader) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	w, err := openWriter(ctx, cfg.Dir, cfg.MaxFileBytes, cfg.MaxFiles)
	if err != nil {
		return err
	}
	if err := w.resume(); err != nil {
		return errors.Join(err, w.close())
	}
	stopped, err := drive(ctx, w, cfg.Logger, stdout, stderr, nil)
	if stopped {
		err = errors.Join(err, wrap("log driver stopped", context.Cause(ctx)))
	}
	return err
}

// capture is the state shared by the two pumps of one driver.
type capture struct {
	log Logger

	draining atomic.Bool // the container has exited: read what the pipes hold, then end

	mu     sync.Mutex
	w      *writer
	closed bool
	werr   error   // first write error; later entries are discarded
	rerrs  []error // read errors of the pumps
}

// drive runs the pumps on an open writer, then ends and closes it. stopped
// reports that ctx ended before both streams did. When drain is closed
// (RequestDrain), the pumps read what their pipes hold without waiting and
// end: the log ends without waiting for end of file.
func drive(ctx context.Context, w *writer, log Logger, stdout, stderr io.Reader, drain <-chan struct{}) (stopped bool, err error) {
	c := &capture{w: w, log: log}
	var wg sync.WaitGroup
	for _, s := range []struct {
		k kind
		r io.Reader
	}{{kindStdout, stdout}, {kindStderr, stderr}} {
		wg.Go(func() {
			if err := c.pump(s.k, s.r); err != nil {
				c.mu.Lock()
				c.rerrs = append(c.rerrs, err)
				c.mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	interrupt := func() {
		for _, r := range []io.Reader{stdout, stderr} {
			if d, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok {
				d.SetReadDeadline(time.Now())
			}
		}
	}
	stop := func() {
		stopped = true
		interrupt()
		select {
		case <-done:
		case <-time.After(cancelGrace):
			log.Warn("log driver abandons a blocked read")
		}
	}
	select {
	case <-done:
	case <-drain:
		// A reader without deadlines is not interrupted: it ends at end
		// of file, as without a drain request.
		c.draining.Store(true)
		interrupt()
		select {
		case <-done:
		case <-ctx.Done():
			stop()
		}
	case <-ctx.Done():
		stop()
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	endErr := c.w.end()
	closeErr := c.w.close()
	return stopped, errors.Join(append(c.rerrs, c.werr, endErr, closeErr)...)
}

// emit appends chunks as entries of one stream and flushes them. After a
// write error it discards, so that the container never blocks on a full pipe.
func (c *capture) emit(k kind, chunks [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.werr != nil {
		return
	}
	now := time.Now().UnixNano()
	for _, chunk := range chunks {
		if err := c.w.append(k, chunk, now); err != nil {
			c.fail(err)
			return
		}
	}
	if err := c.w.flush(); err != nil {
		c.fail(err)
	}
}

func (c *capture) fail(err error) {
	c.werr = err
	c.log.Error("log driver cannot write; discarding output from now on", "error", err)
}

// pump reads one stream until end of file and emits its entries.
func (c *capture) pump(k kind, r io.Reader) error {
	if r == nil {
		return nil
	}
	// buf[:p] holds an incomplete line; p < MaxEntryBytes after every round,
	// so a read always has more than MaxEntryBytes of room.
	buf := make([]byte, 2*MaxEntryBytes)
	p := 0
	var chunks [][]byte
	now := false // draining: read what the pipe holds, never wait
	for {
		var (
			n    int
			rerr error
		)
		if now {
			n, rerr = readNow(r, buf[p:])
		} else {
			n, rerr = r.Read(buf[p:])
		}
		if n > 0 {
			data := buf[:p+n]
			chunks = chunks[:0]
			for len(data) > 0 {
				if i := bytes.IndexByte(data[:min(len(data), MaxEntryBytes)], '\n'); i >= 0 {
					chunks, data = append(chunks, data[:i+1]), data[i+1:]
				} else if len(data) >= MaxEntryBytes {
					chunks, data = append(chunks, data[:MaxEntryBytes]), data[MaxEntryBytes:]
				} else {
					break
				}
			}
			if len(chunks) > 0 {
				c.emit(k, chunks)
			}
			p = copy(buf, data)
		}
		if rerr != nil {
			if !now && errors.Is(rerr, os.ErrDeadlineExceeded) && c.draining.Load() {
				// drive interrupted the read to drain: what the pipe
				// still holds is read without waiting.
				if d, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok && d.SetReadDeadline(time.Time{}) == nil {
					now = true
					continue
				}
			}
			if p > 0 {
				c.emit(k, [][]byte{buf[:p]})
			}
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, os.ErrDeadlineExceeded) {
				return nil
			}
			return wrap("read "+Stream(k).String(), rerr)
		}
	}
}
