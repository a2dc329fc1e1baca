package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
)

// Exit statuses other than the one an exit step asks for.
const (
	exitStepFailed = 1
	exitUsage      = 2
	exitSIGINT     = 130
	exitSIGTERM    = 143
)

func main() {
	prog := &program{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, environ: os.Environ}
	prog.handleSignals()
	os.Exit(prog.main(os.Args))
}

// program is one run of pctest; its fields are the process's surroundings
// so that tests can run it in-process.
type program struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	environ        func() []string
	ignoreTERM     atomic.Bool
	held           [][]byte // memory kept resident by alloc
}

// handleSignals makes SIGTERM and SIGINT end the program with 143 and 130
// (or be ignored after ignore-sigterm), also when it is a container's PID 1.
func (p *program) handleSignals() {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for sig := range ch {
			if sig == syscall.SIGTERM && p.ignoreTERM.Load() {
				fmt.Fprintln(p.stderr, "pctest: SIGTERM ignored")
				continue
			}
			code := exitSIGTERM
			if sig == syscall.SIGINT {
				code = exitSIGINT
			}
			fmt.Fprintf(p.stderr, "pctest: received %s, exiting %d\n", signalName(sig), code)
			os.Exit(code)
		}
	}()
}

func signalName(sig os.Signal) string {
	if sig == syscall.SIGINT {
		return "SIGINT"
	}
	return "SIGTERM"
}

// main runs argv and returns the exit status.
func (p *program) main(argv []string) int {
	base := ""
	if len(argv) > 0 {
		base = filepath.Base(argv[0])
	}
	if base == "python3" || base == "python" {
		return p.python(argv[1:])
	}
	args := argv[1:]
	if len(args) == 0 {
		args = strings.Fields(p.getenv("PCTEST_STEPS"))
		if len(args) == 0 {
			fmt.Fprintln(p.stderr, "pctest: no steps given (arguments or $PCTEST_STEPS); see the package documentation")
			return exitUsage
		}
	}
	steps, err := parse(args, p.getenv)
	if err != nil {
		fmt.Fprintf(p.stderr, "pctest: %v\n", err)
		return exitUsage
	}
	return p.run(steps)
}

// run executes steps in order and returns the exit status.
func (p *program) run(steps []step) int {
	for _, s := range steps {
		err := s.kind.run(p, s.args)
		var ex exitRequest
		if errors.As(err, &ex) {
			return int(ex)
		}
		if err != nil {
			fmt.Fprintf(p.stderr, "pctest: %s: %v\n", s.kind.name, err)
			return exitStepFailed
		}
	}
	return 0
}

// exitRequest is returned by the exit step to end the program with a code.
type exitRequest int

func (e exitRequest) Error() string { return fmt.Sprintf("exit %d", int(e)) }
