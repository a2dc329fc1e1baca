package main

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pcnode/pcnode/internal/testimage/pattern"
)

// python emulates the scripts of Kaapana's dummy processing-container,
// which its templates start as `python3 -u upstream.py` and
// `python3 -u downstream.py`.
func (p *program) python(args []string) int {
	script := ""
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			script = a
			break
		}
	}
	switch path.Base(script) {
	case "upstream.py":
		return p.upstream()
	case "downstream.py":
		return p.downstream()
	default:
		fmt.Fprintf(p.stderr, "pctest: python emulation knows upstream.py and downstream.py, not %q\n", script)
		return exitUsage
	}
}

// dummyDir is /home/<side>/<channel>, under $PCTEST_DUMMY_ROOT if set.
func (p *program) dummyDir(side, channel string) string {
	return filepath.Join(p.getenv("PCTEST_DUMMY_ROOT"), "/home", side, channel)
}

func (p *program) upstream() int {
	if v, ok := p.lookupEnv("DUMMY"); ok {
		fmt.Fprintf(p.stdout, "upstream: DUMMY=%s\n", v)
	}
	iterations := 0
	if v := p.getenv("TIME_SLEEP"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fmt.Fprintf(p.stderr, "upstream: TIME_SLEEP=%q: want a non-negative integer\n", v)
			return exitUsage
		}
		iterations = n
	}
	for i := range iterations {
		fmt.Fprintf(p.stdout, "upstream: sleeping %d/%d\n", i+1, iterations)
		time.Sleep(time.Second)
	}
	for _, f := range pattern.DummyUpstream {
		dst := filepath.Join(p.dummyDir("upstream", f.Channel), filepath.FromSlash(f.Path))
		if err := writePatternFile(dst, f.Size); err != nil {
			fmt.Fprintf(p.stderr, "upstream: %v\n", err)
			return exitStepFailed
		}
		fmt.Fprintf(p.stdout, "upstream: wrote %s/%s (%d bytes)\n", f.Channel, f.Path, f.Size)
	}
	fmt.Fprintln(p.stdout, "upstream: done")
	return 0
}

// lookupEnv reports whether name is set, through p.environ so that tests
// control it.
func (p *program) lookupEnv(name string) (string, bool) {
	for _, kv := range p.environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

func (p *program) downstream() int {
	code := 0
	for _, ch := range pattern.DummyChannels {
		dir := p.dummyDir("downstream", ch)
		var files, bytes int64
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			sum, size, err := hashFile(path)
			if err != nil {
				return err
			}
			files++
			bytes += size
			fmt.Fprintf(p.stdout, "%s/%s size=%d sha256=%s\n", ch, filepath.ToSlash(rel), size, sum)
			return nil
		})
		fmt.Fprintf(p.stdout, "downstream: %s files=%d bytes=%d\n", ch, files, bytes)
		switch {
		case err != nil:
			fmt.Fprintf(p.stderr, "downstream: %s: %v\n", ch, err)
			code = exitStepFailed
		case files == 0:
			fmt.Fprintf(p.stderr, "downstream: %s is empty\n", ch)
			code = exitStepFailed
		}
	}
	return code
}
