package logs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// DrainFileName is the FIFO in a log directory through which the daemon
// tells the running driver that the container has exited: every process
// that could write to the container's stdout and stderr is gone (its init
// has exited, and with it its PID namespace), so what the pipes hold is all
// there will be. The driver then reads them until they are empty, writes the
// end marker and exits, instead of waiting for end of file, which comes only
// when containerd deletes the task and the shim closes its copies of the
// pipes' write ends. A driver creates it (replacing a stale one) once it
// holds the log's lock and removes it when it ends.
const DrainFileName = "drain"

// listenDrain creates the drain FIFO in dir and returns a channel that is
// closed when a byte arrives through it, and the function that stops
// listening and removes the FIFO.
func listenDrain(dir string) (<-chan struct{}, func(), error) {
	path := filepath.Join(dir, DrainFileName)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, wrap("remove stale drain FIFO", err)
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		return nil, nil, wrap("create drain FIFO", err)
	}
	// Read and write: the driver's own write end keeps reads blocking
	// (no end of file) while the daemon has not opened it. O_NOFOLLOW: it
	// was just made, but nothing in the directory is followed.
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		os.Remove(path)
		return nil, nil, wrap("open drain FIFO", err)
	}
	ch := make(chan struct{})
	go func() {
		var b [1]byte
		if n, _ := f.Read(b[:]); n == 1 {
			close(ch)
		}
	}()
	return ch, func() {
		f.Close() // ends the read above
		os.Remove(path)
	}, nil
}

// RequestDrain asks the driver of the log in dir to drain its pipes and seal
// the log now (see DrainFileName). Call it only once the container's init
// has exited. It reports whether a driver was told; a log without a running
// driver that listens (an older driver, a driver that has ended) is not an
// error: its log ends at the task delete as before.
func RequestDrain(dir string) (bool, error) {
	fd, err := syscall.Open(filepath.Join(dir, DrainFileName), syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENXIO): // none, or nobody reads it
		return false, nil
	case err != nil:
		return false, wrap("open drain FIFO", err)
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return false, wrap("stat drain FIFO", err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		return false, invalid(DrainFileName + " in log directory " + dir + " is not a FIFO")
	}
	if _, err := syscall.Write(fd, []byte{1}); err != nil {
		if errors.Is(err, syscall.EAGAIN) { // full: asked already
			return true, nil
		}
		return false, wrap("write drain FIFO", err)
	}
	return true, nil
}

// readNow reads what r holds now without waiting: io.EOF when it holds
// nothing. r must be a pollable file (a pipe the driver made non-blocking).
func readNow(r io.Reader, b []byte) (int, error) {
	sc, ok := r.(syscall.Conn)
	if !ok {
		return 0, io.EOF
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var (
		n    int
		rerr error
	)
	if err := rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), b)
			if rerr != syscall.EINTR {
				return true // never wait
			}
		}
	}); err != nil {
		return 0, err
	}
	switch {
	case rerr == syscall.EAGAIN:
		return 0, io.EOF // empty, and nobody is left to write
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
