// Command pcnode-logd is the logging binary that the containerd shim starts
// for each task pcnoded runs (containerd's binary:// log URI): it captures
// the container's stdout and stderr into the task's log directory, outside
// the daemon process, so that a daemon restart loses nothing. The format, the
// guarantees and the arguments are those of daemon/logs (see its package
// documentation); the shim runs
//
//	pcnode-logd log-driver 'dir=%2Fvar%2Flib%2F...&max-file-bytes=10485760&max-files=5'
//
// with the container's stdout on fd 3, its stderr on fd 4 and a readiness
// pipe on fd 5. People may run `pcnode-logd [log-driver] --dir DIR
// [--max-file-bytes N] [--max-files N]` with those descriptors set up.
//
// One runs per running task, so it is kept small: it links only the capture
// half of daemon/logs and the standard library (no cobra, gRPC, protobuf or
// log/slog), runs on one P, and its memory stays bounded by fixed buffers.
// `pcnoded log-driver` does the same job for containers that an older
// pcnoded started with itself as the logging binary.
package main

import (
	"context"
	"os"
	"runtime"

	"github.com/pcnode/pcnode/daemon/logs"
)

func main() {
	// Capture is two goroutines blocked on pipes and one writer: one P
	// is plenty, and each P costs memory (its caches) and a thread.
	runtime.GOMAXPROCS(1)
	args := os.Args[1:]
	if len(args) > 0 && args[0] == logs.BinarySubcommand {
		args = args[1:]
	}
	if err := logs.RunBinary(context.Background(), args); err != nil {
		// Under the shim stderr goes nowhere; the exit status is what
		// the shim (and a person running it by hand) sees.
		os.Stderr.WriteString("pcnode-logd: " + err.Error() + "\n")
		os.Exit(1)
	}
}
