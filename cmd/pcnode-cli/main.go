// Command pcnode-cli is pcnode's admin command line. Offline it validates
// processing-container.json and Kaapana task.json files and resolves a task
// against its template; further commands talk to a pcnoded.
//
//	pcnode-cli validate FILE [--schema pc|task] [--pc PCFILE]
//	pcnode-cli resolve [--pc PCFILE] TASK.json
//
// Every command writes human text by default and stable JSON with -o json.
// Exit status: 0 success, 1 invalid input or failure, 2 usage error; a
// command may return an error with an ExitCode method to choose another.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses.
const (
	exitOK      = 0
	exitInvalid = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// execute runs the command line args and returns the exit status.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return exitStatus(root.ExecuteContext(ctx), stderr)
}

// exitCoder is an error that chooses the exit status.
type exitCoder interface {
	error
	ExitCode() int
}

// reportedError is a failure whose output has already been written.
type reportedError struct{ code int }

func (e *reportedError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// ExitCode is the status to exit with.
func (e *reportedError) ExitCode() int { return e.code }

// usageError is a mistake in the command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitStatus reports err on stderr (unless already reported) and maps it to
// an exit status.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var rep *reportedError
	if errors.As(err, &rep) {
		return rep.code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "pcnode-cli: %v\nRun 'pcnode-cli --help' for usage.\n", err)
		return exitUsage
	}
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	var task *exitCodeError // run: the task's exit status, already reported
	if errors.As(err, &task) {
		return task.code
	}
	fmt.Fprintf(stderr, "pcnode-cli: %v\n", err)
	return exitInvalid
}
