package logs

import "errors"

var (
	// ErrCorrupt is returned when a segment or record does not follow the
	// format described in the package documentation.
	ErrCorrupt = errors.New("logs: corrupt log data")
	// ErrInvalidConfig is returned when a driver configuration, binary-mode
	// arguments or read options are unusable.
	ErrInvalidConfig = errors.New("logs: invalid configuration")
)

// Internal conditions, never returned by exported functions.
var (
	// errShort reports that a buffer holds only the beginning of a record.
	errShort = errors.New("logs: incomplete record")
	// errEnded is returned when an entry is appended after the end marker.
	errEnded = errors.New("logs: log already ended")
)
