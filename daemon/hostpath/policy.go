package hostpath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// MaxPathLen is the longest host path Check accepts, in bytes: Linux's
// PATH_MAX less the terminating NUL.
const MaxPathLen = 4095

// Policy decides which host paths may be mounted into containers. Build it
// with New; the zero Policy has no data roots and refuses every path.
type Policy struct {
	// DataRoots are the data roots, absolute, clean and with every symlink
	// resolved, in the order given to New. Treat as read-only.
	DataRoots []string

	roots []dataRoot // the same, opened
}

// New returns a Policy for the given data roots. Each root must be an
// absolute path naming an existing directory; it is resolved with
// filepath.EvalSymlinks and opened once, here: Open walks from that
// descriptor for as long as the Policy lives. A root resolving to "/" is
// refused: it would let callers mount the whole host. Overlapping roots are
// allowed. An empty list gives a Policy that refuses every path. Errors wrap
// ErrBadRoot. Close releases the descriptors.
func New(roots []string) (pol *Policy, err error) {
	p := &Policy{DataRoots: make([]string, 0, len(roots))}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	for _, r := range roots {
		if !filepath.IsAbs(r) || strings.IndexByte(r, 0) >= 0 {
			return nil, fmt.Errorf("%w: %q is not an absolute path", ErrBadRoot, r)
		}
		res, err := filepath.EvalSymlinks(r)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrBadRoot, r, err)
		}
		fi, err := os.Stat(res)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrBadRoot, r, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("%w: %q is not a directory", ErrBadRoot, r)
		}
		if res == "/" {
			return nil, fmt.Errorf("%w: %q resolves to \"/\", which would expose the whole host", ErrBadRoot, r)
		}
		dr, err := openRoot(r, res)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrBadRoot, r, err)
		}
		p.DataRoots = append(p.DataRoots, res)
		p.roots = append(p.roots, dr)
	}
	return p, nil
}

// Close closes the data roots' descriptors; Open fails afterwards.
func (pol *Policy) Close() error {
	var errs []error
	for _, r := range pol.roots {
		errs = append(errs, r.f.Close())
	}
	pol.roots = nil
	return errors.Join(errs...)
}

// Check decides whether the host path p, sent by a caller in the request
// field named field, may be mounted, and returns it with every symlink
// resolved. The daemon must mount (and create, and empty) the returned path,
// never p: see the package doc.
//
// With mustExist (input channels) p must name an existing directory. Without
// it (output channels) p may not exist yet: its deepest existing ancestor is
// resolved and the missing elements appended, which cannot be symlinks since
// they do not exist.
//
// A refusal is an *Error wrapping ErrNotAbsolute, ErrNotClean,
// ErrOutsideRoots, ErrNotExist or ErrNotDirectory. Any other error is an I/O
// failure while resolving.
func (pol *Policy) Check(field, p string, mustExist bool) (resolved string, err error) {
	refuse := func(sentinel error, reason string) (string, error) {
		return "", &Error{Field: field, Path: p, Reason: reason, Err: sentinel}
	}
	if sentinel, reason := checkSyntax(p); sentinel != nil {
		return refuse(sentinel, reason)
	}

	// Find the deepest existing ancestor (p itself when it exists). Lstat
	// follows symlinks on every element but the last, which is what we want:
	// a missing element below a symlink is missing in its target.
	anc := p
	for {
		_, err := os.Lstat(anc)
		if err == nil {
			break
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if mustExist {
				return refuse(ErrNotExist, "does not exist")
			}
			anc = filepath.Dir(anc) // "/" exists, so this ends
		case errors.Is(err, syscall.ENOTDIR):
			return refuse(ErrNotDirectory, "has an element that is not a directory")
		case errors.Is(err, syscall.ENAMETOOLONG):
			return refuse(ErrNotClean, "has an element longer than the file system allows")
		case errors.Is(err, syscall.ELOOP):
			return refuse(ErrNotExist, "has too many levels of symlinks")
		default:
			return "", fmt.Errorf("hostpath: %s: %w", field, err)
		}
	}

	res, err := filepath.EvalSymlinks(anc)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		// anc exists, so a symlink on it points to nothing. Creating
		// below it would create the symlink's target, wherever that is.
		return refuse(ErrNotExist, "has a symlink whose target does not exist")
	case errors.Is(err, syscall.ENOTDIR):
		return refuse(ErrNotDirectory, "has an element that is not a directory")
	default:
		// filepath.EvalSymlinks reports a loop with an error of its own
		// that wraps nothing; ask the kernel.
		if _, serr := os.Stat(anc); errors.Is(serr, syscall.ELOOP) {
			return refuse(ErrNotExist, "has too many levels of symlinks")
		}
		return "", fmt.Errorf("hostpath: %s: %w", field, err)
	}
	fi, err := os.Stat(res)
	if err != nil {
		return "", fmt.Errorf("hostpath: %s: %w", field, err)
	}
	if !fi.IsDir() {
		if anc == p {
			return refuse(ErrNotDirectory, "is not a directory")
		}
		return refuse(ErrNotDirectory, "has an element that is not a directory")
	}
	resolved = res
	if anc != p {
		// p is clean and anc is one of its ancestors, so the rest is
		// p[len(anc):], starting with "/" unless anc is "/".
		resolved = filepath.Join(res, strings.TrimPrefix(p[len(anc):], "/"))
	}

	if sentinel, reason := pol.within(resolved, resolved != p); sentinel != nil {
		return refuse(sentinel, reason)
	}
	return resolved, nil
}

// Within returns the data root that the directory p (absolute; its
// symlinks are resolved here) is or lies below, and whether there is one.
// The daemon uses it to keep its own directories (the staging mounts) out of
// every container's reach.
func (pol *Policy) Within(p string) (string, bool) {
	res, err := filepath.EvalSymlinks(p)
	if err != nil {
		res = filepath.Clean(p)
	}
	for _, root := range pol.DataRoots {
		if res == root || below(res, root) {
			return root, true
		}
	}
	return "", false
}

// checkSyntax returns the sentinel and reason refusing p before it is looked
// up, or nil.
func checkSyntax(p string) (error, string) {
	switch {
	case p == "":
		return ErrNotClean, "is empty"
	case strings.IndexByte(p, 0) >= 0:
		return ErrNotClean, "contains a NUL byte"
	case len(p) > MaxPathLen:
		return ErrNotClean, fmt.Sprintf("is longer than %d bytes", MaxPathLen)
	case !filepath.IsAbs(p):
		return ErrNotAbsolute, "is not absolute"
	}
	for _, el := range strings.Split(p, "/") {
		switch el {
		case "..":
			return ErrNotClean, `has a ".." element`
		case ".":
			return ErrNotClean, `has a "." element`
		}
	}
	if c := filepath.Clean(p); c != p {
		return ErrNotClean, fmt.Sprintf("is not clean (no doubled or trailing slashes): did you mean %q?", c)
	}
	return nil, ""
}

// within returns the sentinel and reason refusing the resolved path r, or
// nil when r lies strictly below a data root and neither is nor contains any
// data root. viaSymlink says r differs from what the caller sent, for the
// message.
//
// Paths are compared by elements: both sides are absolute, clean and free of
// symlinks, so see below; a bare prefix test would put "/data2" below
// "/data".
func (pol *Policy) within(r string, viaSymlink bool) (error, string) {
	for _, root := range pol.DataRoots {
		if r == root {
			return ErrOutsideRoots, "is a data root itself; name a directory below it"
		}
		if below(root, r) {
			return ErrOutsideRoots, "contains a data root; name a directory below one"
		}
	}
	for _, root := range pol.DataRoots {
		if below(r, root) {
			return nil, ""
		}
	}
	if viaSymlink {
		return ErrOutsideRoots, "resolves, through a symlink, outside the data roots"
	}
	return ErrOutsideRoots, "is outside the data roots"
}

// below reports whether child lies strictly below parent, both absolute and
// clean: child starts with parent followed by a separator.
func below(child, parent string) bool {
	if parent == "/" {
		return len(child) > 1 && child[0] == '/'
	}
	return len(child) > len(parent) && child[len(parent)] == '/' && child[:len(parent)] == parent
}
