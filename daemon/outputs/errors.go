package outputs

import "errors"

var (
	// ErrSymlink is returned when an output directory, or a directory on the
	// way to it, is a symlink, or was replaced while being opened.
	ErrSymlink = errors.New("output path contains a symlink")
	// ErrNotDirectory is returned when an output directory, or an element on
	// the way to it, exists but is not a directory.
	ErrNotDirectory = errors.New("output path is not a directory")
	// ErrBadPath is returned when an output directory is not an absolute,
	// clean path, or is "/".
	ErrBadPath = errors.New("output path is not absolute and clean")
	// ErrChanged is returned by Collect when a file stops being a regular
	// file between the walk and its hashing.
	ErrChanged = errors.New("output channel changed while it was listed")
)
