package daemontest

import "errors"

// ErrInvalidLayout is returned when Registry.AddOCILayout is given a
// tarball that is not an OCI image layout with exactly one manifest whose
// blobs match their digests.
var ErrInvalidLayout = errors.New("daemontest: invalid OCI image layout")
