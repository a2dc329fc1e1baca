package logs

import (
	"context"
	"errors"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// BinarySubcommand is the argument that selects binary mode: the single key
// of the map BinaryIOArgs returns, so the shim passes it as the first
// argument.
const BinarySubcommand = "log-driver"

const (
	// File descriptors the containerd shim hands to a logging binary.
	fdStdout = 3
	fdStderr = 4
	fdReady  = 5
	// lockWait bounds how long binary mode waits for a previous driver of
	// the same log to finish.
	lockWait = 10 * time.Second
	// drainTimeout is how long binary mode keeps reading after SIGTERM; the
	// shim kills the driver 12 s after its SIGTERM.
	drainTimeout = 5 * time.Second
)

// Argument names, both as query keys and as flags.
const (
	argDir          = "dir"
	argMaxFileBytes = "max-file-bytes"
	argMaxFiles     = "max-files"
)

// BinaryIOArgs returns the arguments for containerd's cio.BinaryIO (the query
// of the "binary://" log URI) that make the shim run
//
//	BINARY log-driver 'dir=...&max-file-bytes=...&max-files=...'
//
// for cfg. cfg.Logger is not carried. Limits that are 0 are left out, so the
// driver's defaults apply.
func BinaryIOArgs(cfg DriverConfig) map[string]string {
	v := url.Values{}
	v.Set(argDir, cfg.Dir)
	if cfg.MaxFileBytes != 0 {
		v.Set(argMaxFileBytes, strconv.FormatInt(cfg.MaxFileBytes, 10))
	}
	if cfg.MaxFiles != 0 {
		v.Set(argMaxFiles, strconv.Itoa(cfg.MaxFiles))
	}
	return map[string]string{BinarySubcommand: v.Encode()}
}

// ParseBinaryArgs parses the arguments that follow BinarySubcommand: either
// the single encoded argument BinaryIOArgs produces, or the flags
// --dir DIR [--max-file-bytes N] [--max-files N]. The directory must be an
// absolute path.
func ParseBinaryArgs(args []string) (DriverConfig, error) {
	var (
		cfg    DriverConfig
		values = map[string]string{}
	)
	switch {
	case len(args) == 1 && !strings.HasPrefix(args[0], "-"):
		if err := parseQuery(args[0], values); err != nil {
			return cfg, err
		}
	default:
		if err := parseFlags(args, values); err != nil {
			return cfg, err
		}
	}
	for k, v := range values {
		var err error
		switch k {
		case argDir:
			cfg.Dir = v
		case argMaxFileBytes:
			cfg.MaxFileBytes, err = strconv.ParseInt(v, 10, 64)
		case argMaxFiles:
			cfg.MaxFiles, err = strconv.Atoi(v)
		default:
			return cfg, invalid("unknown log driver argument " + strconv.Quote(k))
		}
		if err != nil {
			return cfg, invalid("log driver argument "+k, err)
		}
	}
	if !filepath.IsAbs(cfg.Dir) {
		return cfg, invalid("log directory " + strconv.Quote(cfg.Dir) + " is not an absolute path")
	}
	cfg.Dir = filepath.Clean(cfg.Dir)
	return cfg.withDefaults()
}

// parseQuery parses the encoded argument into values as url.ParseQuery
// would ("&" between pairs, key and value query-unescaped, no ";"), and
// refuses a key given twice. (Package url's ParseQuery and package flag
// would bring package fmt into the logging binary.)
func parseQuery(q string, values map[string]string) error {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if kv == "" {
			continue
		}
		if strings.Contains(kv, ";") {
			return invalid("log driver argument: invalid semicolon separator in query")
		}
		k, v, _ := strings.Cut(kv, "=")
		k, err := url.QueryUnescape(k)
		if err != nil {
			return invalid("log driver argument", err)
		}
		if v, err = url.QueryUnescape(v); err != nil {
			return invalid("log driver argument "+strconv.Quote(k), err)
		}
		if _, dup := values[k]; dup {
			return invalid("log driver argument " + strconv.Quote(k) + " given more than once")
		}
		values[k] = v
	}
	return nil
}

// parseFlags parses -NAME VALUE and -NAME=VALUE (one dash or two) of the
// three argument names into values, as package flag would; "--" ends the
// flags, and nothing may follow them.
func parseFlags(args []string, values map[string]string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if rest := args[i+1:]; len(rest) != 0 {
				return invalid("unexpected log driver arguments " + quoteAll(rest))
			}
			return nil
		}
		name, ok := strings.CutPrefix(a, "-")
		if !ok || name == "" {
			return invalid("unexpected log driver arguments " + quoteAll(args[i:]))
		}
		name = strings.TrimPrefix(name, "-")
		name, v, hasValue := strings.Cut(name, "=")
		if name != argDir && name != argMaxFileBytes && name != argMaxFiles {
			return invalid("log driver flags: flag provided but not defined: -" + name)
		}
		if !hasValue {
			if i+1 == len(args) {
				return invalid("log driver flags: flag needs an argument: -" + name)
			}
			i++
			v = args[i]
		}
		values[name] = v
	}
	return nil
}

// quoteAll is %q of a []string.
func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, " ") + "]"
}

// RunBinary is binary mode: the logging binary that the containerd shim
// starts. args are the arguments after BinarySubcommand (see
// ParseBinaryArgs). It reads the container's stdout from fd 3 and stderr from
// fd 4, locks and opens the log, signals readiness by writing one byte to fd
// 5 and closing it, and captures until both streams end. SIGTERM or SIGINT
// leaves it a few seconds to drain before it seals the log; it then returns
// nil, and signals that come later are ignored. Problems go to cfg.Logger, which is nil (discarded) here: under the
// shim the process has no stdout or stderr.
func RunBinary(ctx context.Context, args []string) error {
	cfg, err := ParseBinaryArgs(args)
	if err != nil {
		return err
	}
	files := make([]*os.File, 3)
	for i, fd := range []int{fdStdout, fdStderr, fdReady} {
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil {
			return invalid("file descriptor "+itoa(fd), err)
		}
		if fd != fdReady {
			// Non-blocking descriptors go through Go's poller, so that
			// read deadlines can interrupt them.
			if err := syscall.SetNonblock(fd, true); err != nil {
				return wrap("file descriptor "+itoa(fd), err)
			}
		}
		files[i] = os.NewFile(uintptr(fd), "fd"+itoa(fd))
	}
	stdout, stderr, ready := files[0], files[1], files[2]
	defer stdout.Close()
	defer stderr.Close()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	// Once capture has ended the process is on its way out: a late SIGTERM
	// (the shim sends one on task deletion) must not kill it with the
	// default action between here and exit. Only logging binaries call
	// RunBinary, so ignoring the signals for the rest of the process is
	// right.
	defer signal.Ignore(syscall.SIGTERM, syscall.SIGINT)

	lctx, cancel := context.WithTimeout(ctx, lockWait)
	w, err := openWriter(lctx, cfg.Dir, cfg.MaxFileBytes, cfg.MaxFiles)
	cancel()
	if err == nil {
		if err = w.resume(); err != nil {
			err = errors.Join(err, w.close())
		}
	}
	if err != nil {
		ready.Close()
		return err
	}
	drain, stopDrain, err := listenDrain(cfg.Dir)
	if err != nil {
		// The log then ends at end of file, when the task is deleted.
		cfg.Logger.Warn("no drain FIFO", "error", err)
		stopDrain = func() {}
	}
	defer stopDrain()
	if _, err := ready.Write([]byte{1}); err != nil {
		cfg.Logger.Warn("signal readiness", "error", err)
	}
	if err := ready.Close(); err != nil {
		cfg.Logger.Warn("close readiness pipe", "error", err)
	}

	dctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	errSignalled := errors.New("signalled")
	go func() {
		select {
		case <-sigs:
		case <-dctx.Done():
			return
		}
		select {
		case <-time.After(drainTimeout):
			stop(errSignalled)
		case <-dctx.Done():
		}
	}()
	stopped, err := drive(dctx, w, cfg.Logger, stdout, stderr, drain)
	if cause := context.Cause(dctx); stopped && !errors.Is(cause, errSignalled) {
		err = errors.Join(err, wrap("log driver stopped", cause))
	}
	return err
}
