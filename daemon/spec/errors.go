package spec

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrInvalid is returned, wrapped in [Problems], when a processing-container,
	// template or task breaks a rule. errors.Is(err, ErrInvalid) holds for every
	// Problems value.
	ErrInvalid = errors.New("invalid specification")
	// ErrSyntax is returned when a file is not one well-formed JSON value.
	ErrSyntax = errors.New("malformed JSON")
	// ErrTooLarge is returned when a file is larger than [MaxFileSize].
	ErrTooLarge = errors.New("file too large")
	// ErrMissingEnv is returned when a `{{ env.NAME }}` placeholder names a
	// variable the lookup does not know.
	ErrMissingEnv = errors.New("environment variable not set")
	// ErrPlaceholder is returned when a string holds `{{` that does not start a
	// well-formed `{{ env.NAME }}` placeholder.
	ErrPlaceholder = errors.New("unsupported placeholder")
	// ErrQuantity is returned when a resource quantity cannot be read or is out
	// of range.
	ErrQuantity = errors.New("invalid quantity")
)

// MaxFileSize is the largest processing-container.json or task.json accepted.
const MaxFileSize = 4 << 20

// Problem is one thing wrong with a specification. It mirrors pcnode.v1.Problem.
type Problem struct {
	// Field is the JSON path of the offending value, e.g. "templates[1].env[2].value".
	// Empty for the document as a whole.
	Field string `json:"field"`
	// Description says what is wrong.
	Description string `json:"description"`
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Description
	}
	return p.Field + ": " + p.Description
}

// Problems is every problem found in a specification, in the order found. A
// non-empty Problems is an error that wraps [ErrInvalid].
type Problems []Problem

var _ error = Problems(nil)

func (ps Problems) Error() string {
	if len(ps) == 0 {
		return "no problems"
	}
	var b strings.Builder
	b.WriteString(ErrInvalid.Error())
	b.WriteString(": ")
	for i, p := range ps {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Unwrap makes errors.Is(ps, ErrInvalid) true.
func (ps Problems) Unwrap() error { return ErrInvalid }

// Err returns ps as an error, or nil when there are none. Use it instead of
// converting a possibly empty Problems to error directly.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// Warning is something pcnode ignores or accepts with reservations: an unknown
// field, a duplicate JSON key, a setting that has no effect here.
type Warning struct {
	// Field is the JSON path of the value concerned.
	Field string `json:"field"`
	// Description says what pcnode does with it.
	Description string `json:"description"`
}

func (w Warning) String() string {
	if w.Field == "" {
		return w.Description
	}
	return w.Field + ": " + w.Description
}

// collector gathers problems and warnings while walking a specification.
type collector struct {
	problems Problems
	warnings []Warning
	limits   Limits // the caps checked; zero fields are none
}

func (c *collector) problem(field, format string, args ...any) {
	c.problems = append(c.problems, Problem{Field: field, Description: fmt.Sprintf(format, args...)})
}

func (c *collector) warn(field, format string, args ...any) {
	c.warnings = append(c.warnings, Warning{Field: field, Description: fmt.Sprintf(format, args...)})
}
