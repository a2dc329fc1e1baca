package testimage

import "errors"

var (
	// ErrInvalidImage is returned when an Image cannot be built: a bad
	// name, or an extra file with a path that is not absolute and clean or
	// with an unsupported mode.
	ErrInvalidImage = errors.New("testimage: invalid image")
	// ErrBuildProgram is returned when the test program cannot be compiled.
	ErrBuildProgram = errors.New("testimage: cannot build the test program")
	// ErrNotImported is returned when an import yields no image of the
	// expected name.
	ErrNotImported = errors.New("testimage: image not imported")
)
