package outputs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"unicode/utf8"
)

// Manifest lists the regular files of one output channel. It mirrors the
// API's OutputManifest, plus Skipped.
type Manifest struct {
	// Name is the channel's name.
	Name string
	// HostPath is the channel's directory on the host.
	HostPath string
	// Files are the channel's regular files, sorted by Path.
	Files []File
	// FileCount is len(Files).
	FileCount int64
	// TotalBytes is the sum of the files' sizes.
	TotalBytes int64
	// Skipped counts the entries not listed: symlinks, FIFOs, sockets,
	// devices, and files whose path is not valid UTF-8; a directory whose
	// path is not valid UTF-8 counts once and is not walked. The API has no
	// field for it; the daemon logs it.
	Skipped int64
}

// File is one regular file of an output channel. It mirrors the API's
// OutputFile.
type File struct {
	// Path is relative to the channel directory, "/"-separated.
	Path string
	// Size is the number of bytes hashed.
	Size int64
	// SHA256 is the lowercase hex SHA-256 of the content.
	SHA256 string
}

// hashBufSize is each worker's read buffer.
const hashBufSize = 256 << 10

// Collect walks the output channel name at dir without following symlinks
// and returns its regular files with sizes and SHA-256, sorted by path. Up
// to workers files are hashed at once; workers <= 0 means runtime.NumCPU().
// dir itself must not be, or lie below, a symlink (ErrSymlink).
//
// Collect returns ctx's error promptly when ctx is cancelled, and no
// manifest. A file that turns into something else between the walk and its
// hashing fails the whole manifest with ErrChanged.
func Collect(ctx context.Context, name, dir string, workers int) (*Manifest, error) {
	root, err := openDir(ctx, dir, false)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return collectRoot(ctx, name, dir, root, workers)
}

// collectRoot is Collect's walk of the open directory root; dir names it.
func collectRoot(ctx context.Context, name, dir string, root *os.Root, workers int) (m *Manifest, err error) {
	m = &Manifest{Name: name, HostPath: dir}
	var paths []string
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case !utf8.ValidString(p):
			// The API cannot carry the path, nor can root.FS walk it.
			m.Skipped++
			if d.IsDir() {
				return fs.SkipDir
			}
		case d.IsDir():
		case d.Type().IsRegular():
			paths = append(paths, p)
		default:
			m.Skipped++
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("outputs: walk %q: %w", dir, err)
	}
	// WalkDir visits "a/b" before "a.txt"; sort by the whole path.
	slices.Sort(paths)

	files, err := hashAll(ctx, root, paths, workers)
	if err != nil {
		return nil, err
	}
	m.Files = files
	m.FileCount = int64(len(files))
	for _, f := range files {
		m.TotalBytes += f.Size
	}
	return m, nil
}

// hashAll hashes the files at paths below root with up to workers goroutines
// and returns them in the order of paths. The first error stops every
// worker; ctx is checked before each file and between reads.
func hashAll(ctx context.Context, root *os.Root, paths []string, workers int) ([]File, error) {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	workers = min(workers, len(paths))
	files := make([]File, len(paths))

	var (
		next     atomic.Int64
		failed   atomic.Bool
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	stop := func() error {
		if failed.Load() {
			return errStopped
		}
		return ctx.Err()
	}
	for range workers {
		wg.Go(func() {
			buf := make([]byte, hashBufSize)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(paths) {
					return
				}
				f, err := hashFile(stop, root, paths[i], buf)
				if err != nil {
					once.Do(func() { firstErr = err; failed.Store(true) })
					return
				}
				files[i] = f
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return files, nil
}

// errStopped tells a worker that another one failed; it is never returned.
var errStopped = errors.New("stopped")

// hashFile hashes the regular file p below root. It returns stop's error as
// soon as stop returns one, checking before opening and between reads.
func hashFile(stop func() error, root *os.Root, p string, buf []byte) (File, error) {
	if err := stop(); err != nil {
		return File{}, err
	}
	// O_NONBLOCK: should p have become a FIFO since the walk, opening it
	// must not wait for a writer; on a regular file it changes nothing.
	f, err := root.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return File{}, fmt.Errorf("outputs: hash %q: %w", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return File{}, fmt.Errorf("outputs: hash %q: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return File{}, fmt.Errorf("outputs: hash %q: now %v: %w", p, fi.Mode().Type(), ErrChanged)
	}
	h := sha256.New()
	var n int64
	for {
		k, err := f.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return File{}, fmt.Errorf("outputs: hash %q: %w", p, err)
		}
		if err := stop(); err != nil {
			return File{}, err
		}
	}
	return File{Path: p, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
