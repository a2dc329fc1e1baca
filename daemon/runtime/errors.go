package runtime

import "errors"

var (
	// ErrInvalidReference is returned when an image reference is malformed.
	ErrInvalidReference = errors.New("invalid image reference")
	// ErrInvalidArgument is returned when a caller-supplied value other than
	// an image reference (a container spec field, an id, a path, a size) is
	// malformed or out of range.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrImageNotFound is returned when an image is neither in containerd's
	// image store nor, for Pull, in the registry.
	ErrImageNotFound = errors.New("image not found")
	// ErrUnauthorized is returned when a registry refuses the credentials
	// it was given, or asks for credentials none were configured for.
	ErrUnauthorized = errors.New("registry authorization failed")
	// ErrInvalidArchive is returned when an image archive is not an OCI
	// layout or docker-archive tarball of the expected format, or names its
	// images badly.
	ErrInvalidArchive = errors.New("invalid image archive")
	// ErrImportLimit is returned (as an *ImportLimitError) when an image
	// archive passes one of its import's limits.
	ErrImportLimit = errors.New("image import limit exceeded")
	// ErrFileNotFound is returned when ReadImageFile finds no such file in
	// the image.
	ErrFileNotFound = errors.New("file not found in image")
	// ErrNotRegularFile is returned when ReadImageFile's path names a
	// directory, device or other non-regular file.
	ErrNotRegularFile = errors.New("not a regular file")
	// ErrFileTooLarge is returned when ReadImageFile's file exceeds the
	// caller's size cap.
	ErrFileTooLarge = errors.New("file too large")
	// ErrNotFound is returned when a container or its task does not exist.
	ErrNotFound = errors.New("container not found")
	// ErrAlreadyExists is returned when Start is given the id of an existing
	// container.
	ErrAlreadyExists = errors.New("container already exists")
	// ErrDeviceUnavailable is returned when a requested CDI device is not
	// described by any spec in the configured CDI spec directories.
	ErrDeviceUnavailable = errors.New("CDI device unavailable")
	// ErrUnavailable is returned when containerd cannot be reached (its
	// socket refuses or the connection broke): the call may succeed once
	// containerd is back. It says nothing about whether a container exists.
	ErrUnavailable = errors.New("containerd unavailable")
)
