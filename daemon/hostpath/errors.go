package hostpath

import (
	"errors"
	"fmt"
)

var (
	// ErrNotAbsolute is returned when a host path is not absolute.
	ErrNotAbsolute = errors.New("host path is not absolute")
	// ErrNotClean is returned when a host path is empty, too long, holds a NUL
	// byte, has a "." or ".." element, or is otherwise not what
	// filepath.Clean would return.
	ErrNotClean = errors.New("host path is not clean")
	// ErrOutsideRoots is returned when a host path, after resolving symlinks,
	// does not lie strictly below a data root.
	ErrOutsideRoots = errors.New("host path is outside the data roots")
	// ErrNotExist is returned when a host path that must exist does not, or
	// when a symlink on it points to nothing.
	ErrNotExist = errors.New("host path does not exist")
	// ErrNotDirectory is returned when a host path, or an existing ancestor
	// of one that need not exist, is not a directory.
	ErrNotDirectory = errors.New("host path is not a directory")
	// ErrSymlink is returned by Policy.Open when an element of a host path
	// below its data root, the last included, is a symlink.
	ErrSymlink = errors.New("host path contains a symlink")
	// ErrChanged is returned when an opened directory was removed, moved
	// out of its data root, or replaced while being reopened or mounted.
	ErrChanged = errors.New("host directory changed after it was opened")
	// ErrBadRoot is returned by New when a data root is not an absolute path
	// to an existing directory, or resolves to "/".
	ErrBadRoot = errors.New("invalid data root")
)

// Error is a refused host path. It names the request field the path came
// from and says why, in words fit for the caller; it wraps one of ErrNotAbsolute,
// ErrNotClean, ErrOutsideRoots, ErrNotExist, ErrNotDirectory or ErrSymlink.
type Error struct {
	// Field names the request field holding the path, as the caller gave it
	// to Check (for example "outputs[out].host_path").
	Field string
	// Path is the path as the caller sent it.
	Path string
	// Reason says what is wrong, without the field or path.
	Reason string
	// Err is the sentinel.
	Err error
}

// Error returns "field: path "p" reason".
func (e *Error) Error() string {
	return fmt.Sprintf("%s: path %q %s", e.Field, e.Path, e.Reason)
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }
