package outputs

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Manifest lists the regular files of one output channel. It mirrors the
// API's OutputManifest, plus Skipped, Omitted and what the walk fixed.
type Manifest struct {
	// Name is the channel's name.
	Name string
	// HostPath is the channel's directory on the host.
	HostPath string
	// Files are the channel's regular files, sorted by Path.
	Files []File
	// FileCount is len(Files).
	FileCount int64
	// TotalBytes is the sum of the listed files' sizes.
	TotalBytes int64
	// Skipped counts the entries not listed: symlinks, FIFOs, sockets,
	// devices, and files whose path is not valid UTF-8; a directory whose
	// path is not valid UTF-8 counts once and what lies below it is not
	// listed (but is checked, as everything is). The API has no field for
	// it; the daemon logs it.
	Skipped int64
	// Omitted counts the regular files not listed because Options.MaxFiles
	// or Options.MaxPathBytes was reached. They were checked all the same.
	Omitted int64
	// Fixes are the first MaxFixes changes the walk made (or failed to
	// make) so that the channel holds no privilege, in walk order.
	Fixes []Fix
	// FixCount counts every fix, FixFailures those that failed; both
	// include the ones beyond Fixes.
	FixCount, FixFailures int64
}

// MaxFixes is how many fixes a Manifest lists; the rest are only counted.
const MaxFixes = 32

// FixKind says what the walk did about an entry.
type FixKind int

const (
	// FixSetid: a regular file's setuid and setgid bits were cleared.
	FixSetid FixKind = iota + 1
	// FixDevice: a block or character device node was removed.
	FixDevice
	// FixTooDeep: a directory nested deeper than maxDepth was not walked;
	// instead it was given to root:root with mode 0700 so that no other
	// host user can reach what lies below it.
	FixTooDeep
)

// Fix is one change the walk made so that an output channel holds no
// privilege for host users to pick up.
type Fix struct {
	// Path is relative to the channel directory, "/"-separated; it may not
	// be valid UTF-8 (quote it to print it).
	Path string
	// Kind is what was done.
	Kind FixKind
	// Mode is the entry's mode as found.
	Mode fs.FileMode
	// Err is why the fix could not be made; the entry is then as found.
	Err error
}

// String describes f for people, e.g. `setuid/setgid bits cleared on
// "bin/sh" (mode 6755, now 0755)` or `block device node "sda" (mode 0666)
// removed`.
func (f Fix) String() string {
	var s string
	switch f.Kind {
	case FixSetid:
		now := f.Mode &^ (fs.ModeSetuid | fs.ModeSetgid)
		s = fmt.Sprintf("setuid/setgid bits cleared on %q (mode %s, now %s)", f.Path, octal(f.Mode), octal(now))
		if f.Err != nil {
			s = fmt.Sprintf("setuid/setgid file %q (mode %s) could not be cleared", f.Path, octal(f.Mode))
		}
	case FixDevice:
		kind := "block"
		if f.Mode&fs.ModeCharDevice != 0 {
			kind = "character"
		}
		s = fmt.Sprintf("%s device node %q (mode %s) removed", kind, f.Path, octal(f.Mode))
		if f.Err != nil {
			s = fmt.Sprintf("%s device node %q (mode %s) could not be removed", kind, f.Path, octal(f.Mode))
		}
	case FixTooDeep:
		s = fmt.Sprintf("directory %q is nested deeper than %d levels: not walked, made root-only (0700)", f.Path, maxDepth)
		if f.Err != nil {
			s = fmt.Sprintf("directory %q is nested deeper than %d levels: not walked, and could not be made root-only", f.Path, maxDepth)
		}
	default:
		s = fmt.Sprintf("%q: fix %d", f.Path, int(f.Kind))
	}
	if f.Err != nil {
		s += ": " + f.Err.Error()
	}
	return s
}

// octal writes m's permission, setuid, setgid and sticky bits as chmod(1)
// takes them, e.g. "6755".
func octal(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
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

// Options tune CollectWith.
type Options struct {
	// Workers is how many files are hashed at once; <= 0 means
	// runtime.NumCPU().
	Workers int
	// MaxFiles is the most regular files listed (and hashed), and
	// MaxPathBytes the most bytes their paths may add up to; 0 lists none.
	// Once a file does not fit, it and every later one in walk order are
	// counted in Manifest.Omitted instead: so the manifest's size is bounded
	// however long the paths a container makes.
	MaxFiles, MaxPathBytes int64
}

// hashBufSize is each worker's read buffer.
const hashBufSize = 256 << 10

// maxDepth is how deep below the channel directory the walk descends; it
// holds one descriptor per level.
const maxDepth = 512

// Collect is CollectWith with no cap on the files listed.
func Collect(ctx context.Context, name, dir string, workers int) (*Manifest, error) {
	return CollectWith(ctx, name, dir, Options{Workers: workers, MaxFiles: math.MaxInt64, MaxPathBytes: math.MaxInt64})
}

// CollectWith walks the output channel name at dir without following
// symlinks and returns its regular files with sizes and SHA-256, sorted by
// path: those that fit o.MaxFiles and o.MaxPathBytes in walk order
// (directory by directory, names in byte order), the rest counted in
// Omitted. dir itself must not be, or lie below, a symlink (ErrSymlink).
//
// The walk visits every entry, listed or not, and leaves no privilege
// behind: it clears the setuid and setgid bits of regular files and removes
// device nodes, each through the directory it has open and a descriptor
// opened without following symlinks, never by a path name; see Fix. What it
// fixed, or failed to, is in the manifest.
//
// CollectWith returns ctx's error promptly when ctx is cancelled, and no
// manifest. A file that turns into something else between the walk and its
// hashing fails the whole manifest with ErrChanged.
func CollectWith(ctx context.Context, name, dir string, o Options) (*Manifest, error) {
	root, err := openDir(ctx, dir, false)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return collectIn(ctx, name, dir, root, o)
}

// collectIn is CollectWith on the channel directory already open as root
// (dir is its path, for the manifest and errors only).
func collectIn(ctx context.Context, name, dir string, root *os.Root, o Options) (*Manifest, error) {
	m := &Manifest{Name: name, HostPath: dir}
	w := &walker{ctx: ctx, m: m, maxFiles: o.MaxFiles, maxPathBytes: o.MaxPathBytes}
	top, err := root.Open(".")
	if err != nil {
		return nil, fmt.Errorf("outputs: walk %q: %w", dir, err)
	}
	fd, err := unix.Openat(int(top.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	top.Close()
	if err != nil {
		return nil, fmt.Errorf("outputs: walk %q: %w", dir, err)
	}
	err = w.walk(fd, "", 1, true)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err = cmp.Or(err, w.err); err != nil {
		return nil, fmt.Errorf("outputs: walk %q: %w", dir, err)
	}
	// The walk visits "a/b" before "a.txt"; sort by the whole path.
	slices.Sort(w.paths)

	files, err := hashAll(ctx, root, w.paths, o.Workers)
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

// walker is one walk of a channel.
type walker struct {
	ctx                    context.Context
	m                      *Manifest
	maxFiles, maxPathBytes int64
	paths                  []string // listed regular files
	pathBytes              int64    // their lengths added up
	full                   bool     // a file did not fit: list no more
	err                    error    // the first error below the channel; the walk goes on
}

// walk walks the directory open at fd, whose path is rel ("" for the
// channel itself), depth levels below the channel, and closes fd. Entries
// are listed only when listable (no element of their path is invalid
// UTF-8). It returns only ctx's error; any other error is kept in w.err
// (the first) and the walk goes on, so that one directory that cannot be
// read, or that changed, does not leave privilege in the others.
func (w *walker) walk(fd int, rel string, depth int, listable bool) error {
	dir := os.NewFile(uintptr(fd), rel)
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		w.fail(fmt.Errorf("read directory %q: %w", rel, err))
		// What was read is walked all the same.
	}
	slices.Sort(names)
	for _, name := range names {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		p := name
		if rel != "" {
			p = rel + "/" + name
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if !errors.Is(err, unix.ENOENT) { // ENOENT: removed since it was read
				w.fail(fmt.Errorf("stat %q: %w", p, err))
			}
			continue
		}
		ok := listable && utf8.ValidString(name)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if listable && !ok {
				w.m.Skipped++ // counted once; below it, nothing is listed
			}
			if err := w.walkSub(fd, name, p, &st, depth, ok); err != nil {
				if w.ctx.Err() != nil {
					return err
				}
				w.fail(err)
			}
		case unix.S_IFREG:
			if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
				w.fix(Fix{Path: p, Kind: FixSetid, Mode: fileMode(st.Mode), Err: clearSetid(fd, name, &st)})
			}
			switch {
			case !ok:
				if listable {
					w.m.Skipped++
				}
			case !w.full && int64(len(w.paths)) < w.maxFiles && int64(len(p)) <= w.maxPathBytes-w.pathBytes:
				w.paths = append(w.paths, p)
				w.pathBytes += int64(len(p))
			default:
				w.full = true
				w.m.Omitted++
			}
		case unix.S_IFBLK, unix.S_IFCHR:
			w.fix(Fix{Path: p, Kind: FixDevice, Mode: fileMode(st.Mode), Err: removeDevice(fd, name, &st)})
			if listable {
				w.m.Skipped++
			}
		default: // symlinks, FIFOs, sockets
			if listable {
				w.m.Skipped++
			}
		}
	}
	return nil
}

// walkSub walks the directory name below the directory open at parent,
// after checking that it is still the directory st describes.
func (w *walker) walkSub(parent int, name, p string, st *unix.Stat_t, depth int, listable bool) error {
	if depth >= maxDepth {
		w.fix(Fix{Path: p, Kind: FixTooDeep, Mode: fileMode(st.Mode), Err: lockDir(parent, name, st)})
		return nil
	}
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return fmt.Errorf("%q: %w", p, ErrChanged)
		}
		return fmt.Errorf("open %q: %w", p, err)
	}
	if err := sameFile(fd, st); err != nil {
		unix.Close(fd)
		return fmt.Errorf("%q: %w", p, err)
	}
	return w.walk(fd, p, depth+1, listable)
}

// fail keeps err if it is the walk's first.
func (w *walker) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *walker) fix(f Fix) {
	w.m.FixCount++
	if f.Err != nil {
		w.m.FixFailures++
	}
	if len(w.m.Fixes) < MaxFixes {
		w.m.Fixes = append(w.m.Fixes, f)
	}
}

// openSame opens name below the directory open at parent without following
// a symlink and checks that it is the file st describes.
func openSame(parent int, name string, flags int, st *unix.Stat_t) (int, error) {
	fd, err := unix.Openat(parent, name, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, ErrChanged
		}
		return -1, err
	}
	if err := sameFile(fd, st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// sameFile checks that fd is the file st describes, of the same type.
func sameFile(fd int, st *unix.Stat_t) error {
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return err
	}
	if now.Dev != st.Dev || now.Ino != st.Ino || now.Mode&unix.S_IFMT != st.Mode&unix.S_IFMT {
		return ErrChanged
	}
	return nil
}

// clearSetid clears the setuid and setgid bits of the regular file name
// below the directory open at parent, through a descriptor of that very
// file (fchmod), never by name.
func clearSetid(parent int, name string, st *unix.Stat_t) error {
	fd, err := openSame(parent, name, unix.O_RDONLY, st)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return err
	}
	return unix.Fchmod(fd, now.Mode&0o7777&^(unix.S_ISUID|unix.S_ISGID))
}

// removeDevice unlinks the device node name from the directory open at
// parent once it has checked, just before, that name is still the node st
// describes. unlinkat never follows a symlink; a name swapped between the
// check and the unlink can only be another entry of this directory.
func removeDevice(parent int, name string, st *unix.Stat_t) error {
	var now unix.Stat_t
	if err := unix.Fstatat(parent, name, &now, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if now.Dev != st.Dev || now.Ino != st.Ino || now.Mode&unix.S_IFMT != st.Mode&unix.S_IFMT {
		return ErrChanged
	}
	if err := unix.Unlinkat(parent, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// lockDir gives the directory name below the directory open at parent to
// root:root with mode 0700, through a descriptor of that very directory.
func lockDir(parent int, name string, st *unix.Stat_t) error {
	fd, err := openSame(parent, name, unix.O_RDONLY|unix.O_DIRECTORY, st)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fchown(fd, 0, 0); err != nil {
		return err
	}
	return unix.Fchmod(fd, 0o700)
}

// fileMode converts a stat mode to an fs.FileMode.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
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
