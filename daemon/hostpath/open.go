package hostpath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// FileID identifies a directory on the host: its device and inode numbers.
// Two FileIDs are equal exactly when they name the same object.
type FileID struct {
	Dev, Ino uint64
}

// String returns "dev:ino".
func (id FileID) String() string {
	return strconv.FormatUint(id.Dev, 10) + ":" + strconv.FormatUint(id.Ino, 10)
}

// maxDepth bounds the walks up and down a tree: a path of MaxPathLen bytes
// has at most this many elements.
const maxDepth = MaxPathLen/2 + 1

// dataRoot is one data root, opened once in New.
type dataRoot struct {
	configured string   // as configured
	resolved   string   // with every symlink resolved
	f          *os.File // O_RDONLY|O_DIRECTORY, held until Close
	id         FileID
}

// Dir is a directory below a data root opened by [Policy.Open] without
// following any symlink. The daemon creates, empties, mounts and hashes the
// directory through it, never through its name. Close it when done.
type Dir struct {
	field string
	path  string
	root  *dataRoot
	f     *os.File
	id    FileID
}

// Field is the request field the path came from.
func (d *Dir) Field() string { return d.field }

// Path is the directory's path as walked: the resolved data root followed
// by the elements below it. It names the directory for messages only.
func (d *Dir) Path() string { return d.path }

// ID is the directory's device and inode numbers, taken when it was opened.
func (d *Dir) ID() FileID { return d.id }

// Fd is the descriptor of the open directory (O_PATH: for *at calls,
// fstat and reopening through /proc/self/fd). It stays valid until Close.
func (d *Dir) Fd() int { return int(d.f.Fd()) }

// procPath is the magic link through which the kernel reaches the open
// directory itself, whatever has been renamed or replaced since.
func (d *Dir) procPath() string { return "/proc/self/fd/" + strconv.Itoa(d.Fd()) }

// Close closes the directory.
func (d *Dir) Close() error { return d.f.Close() }

// OpenRoot returns an [os.Root] on the open directory itself (reopened
// through /proc/self/fd, so neither its name nor any symlink is looked up
// again). Operations through the Root cannot leave the directory. The
// caller closes it.
func (d *Dir) OpenRoot() (*os.Root, error) {
	r, err := os.OpenRoot(d.procPath())
	if err != nil {
		return nil, fmt.Errorf("hostpath: reopen %q: %w", d.path, err)
	}
	fi, err := r.Stat(".")
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("hostpath: reopen %q: %w", d.path, err)
	}
	if got := fileIDOf(fi); got != d.id {
		r.Close()
		return nil, fmt.Errorf("hostpath: reopen %q gave %v, want %v: %w", d.path, got, d.id, ErrChanged)
	}
	return r, nil
}

// Ancestors returns the IDs of the directory and of each directory above
// it, as they are now (not as they were when it was opened: a directory
// may have been moved since), walking ".." from the open directory up to
// the file system's root: the directory's own ID first. It fails with
// ErrChanged if the directory no longer lies below the data root it was
// opened from, or was removed.
//
// A directory A is, contains or lies inside B exactly when A's ID is among
// B's Ancestors or B's among A's: see [Overlap].
func (d *Dir) Ancestors() ([]FileID, error) {
	fd, err := unix.Dup(d.Fd())
	if err != nil {
		return nil, fmt.Errorf("hostpath: %q: %w", d.path, err)
	}
	defer func() { unix.Close(fd) }()
	var ids []FileID
	belowRoot := false
	for range maxDepth {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return nil, fmt.Errorf("hostpath: %q: %w", d.path, err)
		}
		id := FileID{Dev: uint64(st.Dev), Ino: st.Ino}
		if st.Nlink == 0 {
			return nil, fmt.Errorf("hostpath: %q was removed: %w", d.path, ErrChanged)
		}
		if len(ids) > 0 && ids[len(ids)-1] == id {
			// ".." of the root is the root.
			if !belowRoot {
				return nil, fmt.Errorf("hostpath: %q was moved out of the data root %q: %w", d.path, d.root.resolved, ErrChanged)
			}
			return ids, nil
		}
		if id == d.root.id {
			belowRoot = true // or at it: OpenDeepest may stop there
		}
		ids = append(ids, id)
		up, err := unix.Openat(fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil, fmt.Errorf("hostpath: %q was removed: %w", d.path, ErrChanged)
			}
			return nil, fmt.Errorf("hostpath: %q: parent: %w", d.path, err)
		}
		unix.Close(fd)
		fd = up
	}
	return nil, fmt.Errorf("hostpath: %q: more than %d levels deep: %w", d.path, maxDepth, ErrChanged)
}

// Overlap says how the directory with ancestors a (its own ID first, as
// [Dir.Ancestors] returns) relates to the one with ancestors b: "is the
// same directory as", "lies inside", "contains", or "" when neither holds
// the other.
func Overlap(a, b []FileID) string {
	if len(a) == 0 || len(b) == 0 {
		return ""
	}
	switch {
	case a[0] == b[0]:
		return "is the same directory as"
	case containsID(a[1:], b[0]):
		return "lies inside"
	case containsID(b[1:], a[0]):
		return "contains"
	}
	return ""
}

func containsID(ids []FileID, id FileID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// Open opens the directory p, sent by a caller in the request field named
// field, without following any symlink below its data root, and returns it.
// With create, missing directories are created (mode 0o755 before umask),
// each in the directory opened just before, so nothing is ever created
// through a symlink.
//
// p must be absolute, clean and strictly below a data root, as configured or
// as resolved (normally it is the path [Policy.Check] returned at submit).
// The walk starts at the data root's descriptor, opened once in New, and
// opens one element at a time with O_NOFOLLOW: a symlink anywhere below the
// data root, p itself included, is refused with ErrSymlink, whether it points
// inside the data roots or not.
//
// A refusal is an *Error wrapping ErrNotAbsolute, ErrNotClean,
// ErrOutsideRoots, ErrNotExist, ErrNotDirectory or ErrSymlink. Any other
// error is an I/O failure.
func (pol *Policy) Open(field, p string, create bool) (*Dir, error) {
	mode := walkExisting
	if create {
		mode = walkCreate
	}
	d, _, err := pol.open(field, p, mode)
	return d, err
}

// OpenDeepest is Open for a directory that may not exist yet: it opens the
// deepest existing directory on p (p itself when it exists; at least p's
// data root) the same way, creating nothing, and returns it with the
// elements of p below it that are missing. [Dir.Create] creates them later,
// from the returned descriptor.
func (pol *Policy) OpenDeepest(field, p string) (*Dir, []string, error) {
	return pol.open(field, p, walkDeepest)
}

// Create creates the directories rest (single elements, as OpenDeepest
// returns them) below d, each in the one opened just before, without
// following symlinks, and returns the last one opened. Elements that exist
// by then are opened as they are (and refused if they are symlinks).
func (d *Dir) Create(rest []string) (*Dir, error) {
	if len(rest) == 0 {
		fd, err := unix.Dup(d.Fd())
		if err != nil {
			return nil, fmt.Errorf("hostpath: %s: %w", d.field, err)
		}
		return &Dir{field: d.field, path: d.path, root: d.root, f: os.NewFile(uintptr(fd), d.path), id: d.id}, nil
	}
	for _, name := range rest {
		if !validElement(name) {
			return nil, fmt.Errorf("hostpath: %s: invalid element %q", d.field, name)
		}
	}
	fd, err := unix.Dup(d.Fd())
	if err != nil {
		return nil, fmt.Errorf("hostpath: %s: %w", d.field, err)
	}
	out, _, err := walk(d.field, d.path+"/"+strings.Join(rest, "/"), d.root, fd, d.path, rest, walkCreate)
	return out, err
}

// walkMode says what walk does with a missing element.
type walkMode int

const (
	walkExisting walkMode = iota // refuse it: ErrNotExist
	walkCreate                   // create it
	walkDeepest                  // stop before it
)

func (pol *Policy) open(field, p string, mode walkMode) (*Dir, []string, error) {
	if sentinel, reason := checkSyntax(p); sentinel != nil {
		return nil, nil, &Error{Field: field, Path: p, Reason: reason, Err: sentinel}
	}
	root, rel := pol.rootOf(p)
	if root == nil {
		for _, r := range pol.roots {
			if p == r.resolved || p == r.configured {
				return nil, nil, &Error{Field: field, Path: p, Reason: "is a data root itself; name a directory below it", Err: ErrOutsideRoots}
			}
		}
		return nil, nil, &Error{Field: field, Path: p, Reason: "is outside the data roots", Err: ErrOutsideRoots}
	}
	fd, err := unix.Dup(int(root.f.Fd()))
	if err != nil {
		return nil, nil, fmt.Errorf("hostpath: %s: %w", field, err)
	}
	return walk(field, p, root, fd, root.resolved, strings.Split(rel, "/"), mode)
}

// walk opens elems one at a time below the directory fd (whose path is
// base, at or below root) with O_PATH|O_NOFOLLOW, and returns the last as a
// Dir; p is the caller's path, for refusals. It consumes fd. With
// walkDeepest it returns the deepest directory that exists and the
// elements from the first missing one on.
func walk(field, p string, root *dataRoot, fd int, base string, elems []string, mode walkMode) (*Dir, []string, error) {
	refuse := func(sentinel error, reason string) (*Dir, []string, error) {
		return nil, nil, &Error{Field: field, Path: p, Reason: reason, Err: sentinel}
	}
	fail := func(err error) (*Dir, []string, error) {
		unix.Close(fd)
		return nil, nil, err
	}
	walked := base
	var missing []string
	for i, name := range elems {
		last := i == len(elems)-1
		at := walked + "/" + name
		if mode == walkCreate {
			if err := unix.Mkdirat(fd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				sentinel, reason := classify(fd, name, at, err)
				unix.Close(fd)
				if sentinel != nil {
					return refuse(sentinel, reason)
				}
				return nil, nil, fmt.Errorf("hostpath: %s: mkdir %q: %w", field, at, err)
			}
		}
		// O_PATH|O_NOFOLLOW opens the entry itself, whatever it is, so
		// the check of its type below is on the very object opened.
		next, err := unix.Openat(fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if mode == walkDeepest && errors.Is(err, unix.ENOENT) {
				missing = elems[i:]
				break
			}
			sentinel, reason := classify(fd, name, at, err)
			unix.Close(fd)
			if sentinel != nil {
				return refuse(sentinel, reason)
			}
			return nil, nil, fmt.Errorf("hostpath: %s: open %q: %w", field, at, err)
		}
		unix.Close(fd)
		fd = next
		walked = at
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return fail(fmt.Errorf("hostpath: %s: %w", field, err))
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
		case unix.S_IFLNK:
			unix.Close(fd)
			if last {
				return refuse(ErrSymlink, "is a symlink, which is not followed")
			}
			return refuse(ErrSymlink, fmt.Sprintf("has a symlink at %q, which is not followed", at))
		default:
			unix.Close(fd)
			if last {
				return refuse(ErrNotDirectory, "is not a directory")
			}
			return refuse(ErrNotDirectory, fmt.Sprintf("has an element that is not a directory at %q", at))
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fail(fmt.Errorf("hostpath: %s: %w", field, err))
	}
	return &Dir{
		field: field,
		path:  walked,
		root:  root,
		f:     os.NewFile(uintptr(fd), walked),
		id:    FileID{Dev: uint64(st.Dev), Ino: st.Ino},
	}, missing, nil
}

// rootOf returns the data root p lies strictly below, as configured or as
// resolved, and the rest of p below it (no leading slash). With overlapping
// data roots the innermost wins. It returns nil when p is below none.
func (pol *Policy) rootOf(p string) (*dataRoot, string) {
	var best *dataRoot
	var rest string
	for i := range pol.roots {
		r := &pol.roots[i]
		for _, prefix := range []string{r.resolved, r.configured} {
			if below(p, prefix) && (best == nil || len(p)-len(prefix)-1 < len(rest)) {
				best, rest = r, strings.TrimPrefix(p[len(prefix):], "/")
			}
		}
	}
	return best, rest
}

// classify turns the failure of mkdirat or openat of name in the
// directory parent into a refusal, or returns nil for an I/O error; walked
// is the path of name.
func classify(parent int, name, walked string, err error) (error, string) {
	switch {
	case errors.Is(err, unix.ENOENT):
		return ErrNotExist, fmt.Sprintf("does not exist at %q", walked)
	case errors.Is(err, unix.ENOTDIR):
		// parent was replaced by a non-directory? It is held open, so
		// this is an entry that mkdirat found to be no directory.
		return ErrNotDirectory, fmt.Sprintf("has an element that is not a directory at %q", walked)
	case errors.Is(err, unix.ENAMETOOLONG):
		return ErrNotClean, "has an element longer than the file system allows"
	}
	return nil, ""
}

// openRoot opens the data root r (configured; symlinks in the operator's
// configuration are followed, once) and checks that it is the directory
// resolved names.
func openRoot(configured, resolved string) (dataRoot, error) {
	fd, err := unix.Open(configured, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return dataRoot{}, err
	}
	f := os.NewFile(uintptr(fd), resolved)
	got, err := f.Stat()
	if err != nil {
		f.Close()
		return dataRoot{}, err
	}
	want, err := os.Stat(resolved)
	if err != nil {
		f.Close()
		return dataRoot{}, err
	}
	if !os.SameFile(got, want) {
		f.Close()
		return dataRoot{}, fmt.Errorf("%q changed while being opened", configured)
	}
	return dataRoot{configured: filepath.Clean(configured), resolved: resolved, f: f, id: fileIDOf(got)}, nil
}

func fileIDOf(fi os.FileInfo) FileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return FileID{}
	}
	return FileID{Dev: uint64(st.Dev), Ino: st.Ino}
}
