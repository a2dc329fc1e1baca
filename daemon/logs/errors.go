package logs

import (
	"errors"
	"strconv"
)

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

// The capture half (the logging binary's code: binary.go, driver.go,
// writer.go, segment.go, record.go) builds its errors without package fmt,
// which would add a quarter of a megabyte to every running pcnode-logd (see
// the package doc). These helpers give the texts and wrapping fmt.Errorf
// would.

// wrapError is an error with a fixed text wrapping errs.
type wrapError struct {
	text string
	errs []error
}

func (e *wrapError) Error() string   { return e.text }
func (e *wrapError) Unwrap() []error { return e.errs }

// wrap is fmt.Errorf(msg+": %w", err).
func wrap(msg string, err error) error {
	return &wrapError{text: msg + ": " + err.Error(), errs: []error{err}}
}

// invalid is fmt.Errorf("%w: "+msg, ErrInvalidConfig), with ": %w" of a
// cause appended when one is given.
func invalid(msg string, cause ...error) error { return sentinelError(ErrInvalidConfig, msg, cause) }

// corrupt is fmt.Errorf("%w: "+msg, ErrCorrupt).
func corrupt(msg string) error { return sentinelError(ErrCorrupt, msg, nil) }

func sentinelError(sentinel error, msg string, causes []error) error {
	e := &wrapError{text: sentinel.Error() + ": " + msg, errs: []error{sentinel}}
	for _, c := range causes {
		e.text += ": " + c.Error()
		e.errs = append(e.errs, c)
	}
	return e
}

// itoa is %d.
func itoa[T int | int64 | uint32 | uint8](v T) string { return strconv.FormatInt(int64(v), 10) }
