package testimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
)

var programCache struct {
	sync.Mutex
	path string
}

// Program returns the path of the compiled test program (static,
// linux/GOARCH), building it on first use. The result is cached for the
// process and, by a hash of its source, in the user cache directory.
func Program(ctx context.Context) (string, error) {
	programCache.Lock()
	defer programCache.Unlock()
	if programCache.path != "" {
		if _, err := os.Stat(programCache.path); err == nil {
			return programCache.path, nil
		}
	}
	path, err := buildProgram(ctx)
	if err != nil {
		return "", err
	}
	programCache.path = path
	return path, nil
}

// sourceDir is this package's directory, where testprog and pattern live.
func sourceDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("%w: cannot locate the package source", ErrBuildProgram)
	}
	return filepath.Dir(file), nil
}

// sourceHash hashes the Go files the program is built from, plus the Go
// version and architecture.
func sourceHash(dir string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", runtime.Version(), runtime.GOARCH)
	for _, sub := range []string{"testprog", "pattern"} {
		files, err := filepath.Glob(filepath.Join(dir, sub, "*.go"))
		if err != nil {
			return "", err
		}
		asm, err := filepath.Glob(filepath.Join(dir, sub, "*.s"))
		if err != nil {
			return "", err
		}
		files = append(files, asm...)
		slices.Sort(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return "", fmt.Errorf("%w: %w", ErrBuildProgram, err)
			}
			fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func buildProgram(ctx context.Context) (string, error) {
	dir, err := sourceDir()
	if err != nil {
		return "", err
	}
	sum, err := sourceHash(dir)
	if err != nil {
		return "", err
	}
	outDir, err := cacheDir()
	if err != nil {
		return "", err
	}
	final := filepath.Join(outDir, "pctest-"+sum)
	if info, err := os.Stat(final); err == nil && info.Mode().IsRegular() {
		return final, nil
	}
	tmp, err := os.CreateTemp(outDir, "pctest-build-*")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBuildProgram, err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())

	goCmd, err := goCommand()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-ldflags=-s -w", "-o", tmp.Name(), "./testprog")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: go build: %w\n%s", ErrBuildProgram, err, out.Bytes())
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBuildProgram, err)
	}
	return final, nil
}

// cacheDir is a private directory for built programs: under the user
// cache directory when there is one, else a fresh temporary directory.
func cacheDir() (string, error) {
	if base, err := os.UserCacheDir(); err == nil {
		dir := filepath.Join(base, "pcnode", "testimage")
		if err := os.MkdirAll(dir, 0o700); err == nil {
			return dir, nil
		}
	}
	dir, err := os.MkdirTemp("", "pcnode-testimage-")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBuildProgram, err)
	}
	return dir, nil
}

func goCommand() (string, error) {
	// `go test` puts its own GOROOT/bin first on the test's PATH.
	p, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBuildProgram, err)
	}
	return p, nil
}
