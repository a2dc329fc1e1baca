package logs

import "errors"

var (
	// ErrCorrupt is returned when a segment or record does not follow the
	// format described in the package documentation.
	ErrCorrupt = errors.New("logs: corrupt log data")
	// ErrInvalidConfig is returned when a driver configuration, binary-mode
	// arguments or read options are unusable.
	ErrInvalidConfig = errors.New("logs: invalid configuration")
	// ErrEnded is returned when an entry is appended to a log after its end
	// marker was written.
	ErrEnded = errors.New("logs: log already ended")
)
