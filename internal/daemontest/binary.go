package daemontest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pcnode/pcnode/daemon/logs"
)

// EnvBinary names the variable that points at a prebuilt pcnoded to test
// instead of building one.
const EnvBinary = "PCNODE_TEST_PCNODED"

// binaryDirPrefix starts the name of the per-process build directory.
const binaryDirPrefix = "pcnode-daemontest-"

// built is one build of the binary.
type built struct {
	path string
	err  error
}

// Build says how the pcnoded under test is built.
type Build struct {
	// Race builds with the race detector.
	Race bool
	// CrashPoints builds with the crashpoints tag: the daemon kills itself
	// at the lifecycle point named by $PCNODE_CRASH_AT (daemon.EnvCrashAt).
	// Never a release build.
	CrashPoints bool
}

// logDriverBuild is the one build of pcnode-logd beside the pcnoded builds.
var logDriverBuild struct {
	sync.Once
	err error
}

var binaryCache struct {
	sync.Mutex
	builds map[Build]*built
}

// Binary returns the path of the pcnoded binary under test, building it on
// first use in this process: `go build -race ./cmd/pcnoded` when race is
// true, else without the race detector. It fails t when the build fails;
// later calls fail at once with the same error.
func Binary(t testing.TB, race bool) string {
	t.Helper()
	return BinaryFor(t, Build{Race: race})
}

// BinaryFor returns the path of pcnoded built as b, building it on first
// use in this process, as Binary does. $PCNODE_TEST_PCNODED replaces only
// the build without crash points.
func BinaryFor(t testing.TB, b Build) string {
	t.Helper()
	binaryCache.Lock()
	defer binaryCache.Unlock()
	if binaryCache.builds == nil {
		binaryCache.builds = map[Build]*built{}
	}
	bb := binaryCache.builds[b]
	if bb == nil {
		bb = &built{}
		bb.path, bb.err = buildBinary(t.Context(), b)
		binaryCache.builds[b] = bb
	}
	if bb.err != nil {
		t.Fatalf("daemontest: pcnoded binary: %v", bb.err)
	}
	return bb.path
}

func buildBinary(ctx context.Context, b Build) (string, error) {
	if p := os.Getenv(EnvBinary); p != "" && !b.CrashPoints {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w", EnvBinary, err)
		}
		// `make build` puts pcnode-logd beside it; the daemon refuses to
		// start without one, so say so here, once.
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), LogDriverName)); err != nil {
			return "", fmt.Errorf("%s: no %s beside it (make build builds both): %w", EnvBinary, LogDriverName, err)
		}
		return p, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	removeStaleBinaryDirs()
	dir := filepath.Join(os.TempDir(), binaryDirPrefix+strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "pcnoded")
	var flags []string
	if b.Race {
		out += "-race"
		flags = append(flags, "-race")
	}
	if b.CrashPoints {
		out += "-crashpoints"
		flags = append(flags, "-tags", "crashpoints")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	// The daemon runs the logging binary found beside it (logs.driver_path
	// unset), so every integration test captures logs with pcnode-logd as
	// installed. It is built without the race detector: it is one small
	// process per running task, and daemon/logs's unit tests run with -race.
	// Built once per process: a later pcnoded build (race, crash points)
	// must not rewrite the file while shims run it.
	logDriverBuild.Do(func() {
		logDriverBuild.err = goBuild(ctx, root, nil, filepath.Join(dir, LogDriverName), "./cmd/pcnode-logd")
	})
	if logDriverBuild.err != nil {
		return "", logDriverBuild.err
	}
	if err := goBuild(ctx, root, flags, out, "./cmd/pcnoded"); err != nil {
		return "", err
	}
	return out, nil
}

// LogDriverName is the file name of the logging binary that Binary builds
// beside pcnoded, where the daemon looks for it.
const LogDriverName = logs.DriverBinaryName

// goBuild runs `go build FLAGS -o out pkg` in the module root. Building with
// the race detector needs cgo.
func goBuild(ctx context.Context, root string, flags []string, out, pkg string) error {
	args := append(append([]string{"build"}, flags...), "-o", out, pkg)
	cmd := exec.CommandContext(ctx, goCommand(), args...)
	cmd.Dir = root
	if slices.Contains(flags, "-race") {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	}
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(args, " "), root, err, log.Bytes())
	}
	if d := time.Since(start); d > 30*time.Second {
		fmt.Fprintf(os.Stderr, "daemontest: built %s in %v\n", filepath.Base(out), d.Round(time.Second))
	}
	return nil
}

// removeStaleBinaryDirs removes build directories of processes that have
// ended.
func removeStaleBinaryDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binaryDirPrefix+"*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), binaryDirPrefix))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); os.IsNotExist(err) {
			os.RemoveAll(d)
		}
	}
}

// ModuleRoot returns the directory holding the go.mod of the module this
// package belongs to, found from this source file's location.
func ModuleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return moduleRootFromGo()
	}
	for dir := filepath.Dir(file); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if parent := filepath.Dir(dir); parent == dir {
			return moduleRootFromGo()
		}
	}
}

// moduleRootFromGo asks the go command, for builds with -trimpath.
func moduleRootFromGo() (string, error) {
	out, err := exec.Command(goCommand(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("cannot find the module root: not in a module")
	}
	return filepath.Dir(mod), nil
}

// goCommand is the go command `go test` put first on PATH, else "go".
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// LogDriverBinary returns the path of the pcnode-logd built beside the
// pcnoded of b (building both on first use), the logging binary that
// daemon's shims run.
func LogDriverBinary(t testing.TB, b Build) string {
	t.Helper()
	return filepath.Join(filepath.Dir(BinaryFor(t, b)), LogDriverName)
}
