package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pcnode/pcnode/internal/testimage/pattern"
)

func (p *program) env(_ []string) error {
	env := p.environ()
	slices.Sort(env)
	for _, kv := range env {
		if _, err := fmt.Fprintln(p.stdout, kv); err != nil {
			return err
		}
	}
	return nil
}

func (p *program) echo(args []string) error {
	_, err := fmt.Fprintln(p.stdout, strings.Join(args, " "))
	return err
}

func (p *program) id(_ []string) error {
	groups, err := os.Getgroups()
	if err != nil {
		return err
	}
	gs := make([]string, len(groups))
	for i, g := range groups {
		gs[i] = strconv.Itoa(g)
	}
	_, err = fmt.Fprintf(p.stdout, "uid=%d gid=%d groups=%s\n", os.Getuid(), os.Getgid(), strings.Join(gs, ","))
	return err
}

func (p *program) cat(args []string) error {
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(p.stdout, f)
	return err
}

func (p *program) writeStdout(args []string) error { return writePattern(p.stdout, args[0]) }
func (p *program) writeStderr(args []string) error { return writePattern(p.stderr, args[0]) }

func writePattern(w io.Writer, size string) error {
	n, err := parseSize(size)
	if err != nil {
		return err
	}
	_, err = pattern.Write(w, n)
	return err
}

func (p *program) writeFile(args []string) error {
	n, err := parseSize(args[1])
	if err != nil {
		return err
	}
	return writePatternFile(args[0], n)
}

func writePatternFile(path string, n int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := pattern.Write(f, n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pageSize is the stride at which alloc touches memory; writing one byte
// per page is enough to make the kernel back the page.
const pageSize = 4096

func (p *program) alloc(args []string) error {
	n, err := parseSize(args[0])
	if err != nil {
		return err
	}
	b := make([]byte, n)
	for i := 0; i < len(b); i += pageSize {
		b[i] = 1
	}
	p.held = append(p.held, b)
	_, err = fmt.Fprintf(p.stderr, "pctest: allocated %d bytes\n", n)
	return err
}

func (p *program) spin(args []string) error {
	d, err := parseDuration(args[0])
	if err != nil {
		return err
	}
	end := time.Now().Add(d)
	x := uint64(1)
	for time.Now().Before(end) {
		for range 100000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	if x == 0 { // keep the loop from being optimised away
		fmt.Fprintln(p.stderr, "pctest: spin")
	}
	return nil
}

func (p *program) sleep(args []string) error {
	d, err := parseDuration(args[0])
	if err != nil {
		return err
	}
	time.Sleep(d)
	return nil
}

// waitFile waits until FILE exists (looking every 20 ms), for at most
// DURATION; then it is an error.
func (p *program) waitFile(args []string) error {
	d, err := parseDuration(args[1])
	if err != nil {
		return err
	}
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Lstat(args[0]); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait-file: %s did not appear within %s", args[0], args[1])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *program) ignoreSIGTERM(_ []string) error {
	p.ignoreTERM.Store(true)
	return nil
}

func (p *program) exit(args []string) error {
	code, err := parseExitCode(args[0])
	if err != nil {
		return err
	}
	return exitRequest(code)
}
