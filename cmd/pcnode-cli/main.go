// Command pcnode-cli is pcnode's admin command line. Offline it validates
// processing-container.json and Kaapana task.json files and resolves a task
// against its template; the other commands talk to a pcnoded. validate's
// JSON Schema checks run in pcnode-schema, installed beside pcnode-cli
// (schemacheck.go says why).
//
//	pcnode-cli validate FILE [--schema pc|task] [--pc PCFILE]
//	pcnode-cli resolve [--pc PCFILE] TASK.json
//	pcnode-cli submit|run TASK.json, logs [-f] ID, get ID, list, cancel ID
//	pcnode-cli watch                   live task table (WatchTasks)
//	pcnode-cli node [drain|resume]     the node, its GPUs; stop/start admitting
//	pcnode-cli image import|pull|ls|rm, pc IMAGE
//
// # Connecting
//
// --address (or $PCNODE_ADDRESS) is a unix socket path (default
// /run/pcnode/pcnoded.sock) or host:port. host:port is always TLS 1.3:
// --tls-ca ($PCNODE_TLS_CA) is the CA bundle that signed the node's
// certificate (the system roots when unset), --tls-cert/--tls-key
// ($PCNODE_TLS_CERT/$PCNODE_TLS_KEY) the client certificate a node with
// mutual TLS asks for, --tls-server-name ($PCNODE_TLS_SERVER_NAME) the name
// to verify. A flag on the command line wins over its variable; host:port
// without a CA or client certificate, or a TLS flag with a socket, is a
// usage error. A failed call says what to do next: which address was
// tried and where it came from, which flag fixes a TLS failure, which role
// a denied command needs (and the [[api.roles]] identity and role in
// pcnoded.toml that would grant it), which fields are invalid. A test checks
// every pcnoded.toml key a message names against the daemon's defaults.
//
// # Output
//
// Tables show sizes, CPU and durations for people ("23.5 GiB", "1.5 cores",
// "1m32s"), all through format.go, and quote any string from the node that
// holds control characters. -o json prints the API message as JSON that is
// byte-identical for the same data on every run (see jsonout.go); streams
// (logs, watch) print one JSON object per line. Progress bars (pull,
// import) are drawn only when stdout is a terminal, over the whole image;
// otherwise progress is plain lines on stderr, and nothing with -o json.
//
// Exit status: 0 success, 1 invalid input or failure, 2 usage error; run
// exits with the task's exit code. A command may return an error with an
// ExitCode method to choose another.
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
