package store

import (
	"fmt"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// History sizes.
const (
	// DefaultHistory is how many state changes a store keeps for Changes
	// when its options name no number.
	DefaultHistory = 10_000
	// MinHistory and MaxHistory bound the history a store may be given.
	MinHistory = 100
	MaxHistory = 10_000_000
)

// DefaultChangesLimit is the page size of Changes when its limit is 0 or less.
const DefaultChangesLimit = 256

// Change is one state change: the revision it was given and the task as it
// was written.
type Change struct {
	Revision uint64
	Task     *pcnodev1.Task
}

// Revisions is the span of revisions a store holds at one moment.
type Revisions struct {
	// Current is the newest revision given; 0 before the first state change.
	Current uint64
	// Oldest is the oldest revision still in the history; Current+1 when
	// the history is empty. Changes can resume after Oldest-1 or later.
	Oldest uint64
}

// changeTasks returns the tasks of changes.
func changeTasks(changes []Change) []*pcnodev1.Task {
	if changes == nil {
		return nil
	}
	out := make([]*pcnodev1.Task, len(changes))
	for i, c := range changes {
		out[i] = c.Task
	}
	return out
}

// checkResume checks that Changes may continue after revision after.
func (r Revisions) checkResume(after uint64) error {
	switch {
	case after > r.Current:
		return fmt.Errorf("revision %d, newest is %d: %w", after, r.Current, ErrFutureRevision)
	case after+1 < r.Oldest:
		return fmt.Errorf("revision %d, oldest kept is %d: %w", after, r.Oldest, ErrCompacted)
	}
	return nil
}

// isStateChange reports whether writing next over prev (nil for a new
// task) is a state change, which gets a revision.
func isStateChange(prev, next *pcnodev1.Task) bool {
	return prev == nil || prev.GetState() != next.GetState()
}

// historyLimit returns n checked, DefaultHistory for 0.
func historyLimit(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultHistory, nil
	case n < MinHistory || n > MaxHistory:
		return 0, fmt.Errorf("history of %d changes, want %d to %d: %w", n, MinHistory, MaxHistory, ErrInvalidArgument)
	}
	return n, nil
}
