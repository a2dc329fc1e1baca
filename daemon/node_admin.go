package daemon

import (
	"sync"
	"sync/atomic"
)

// nodeAdmin is whether the node admits new tasks, apart from their fit:
// not while it drains (DrainNode until ResumeNode, kept in the store across
// restarts) and not while the last run's tasks are being recovered (from
// Start until recovery is done: a task stored then would be queued twice).
// Its zero value admits.
type nodeAdmin struct {
	draining   atomic.Bool
	drainMu    sync.Mutex // held by setDraining: store write, then draining
	recovering atomic.Bool
}

// isDraining reports whether the node drains.
func (a *nodeAdmin) isDraining() bool { return a.draining.Load() }

// setDraining makes the node drain or admit again. When that changes
// anything it calls persist (the store write) first, so that a node
// answered "draining" still drains after a restart, and when persist fails
// nothing changed and its error is returned; then sets it and calls
// changed. Both are called under drainMu, so drains and resumes are
// written, set and announced in one order.
func (a *nodeAdmin) setDraining(draining bool, persist func() error, changed func()) error {
	a.drainMu.Lock()
	defer a.drainMu.Unlock()
	if a.draining.Load() == draining {
		return nil
	}
	if err := persist(); err != nil {
		return err
	}
	a.draining.Store(draining)
	changed()
	return nil
}

// restoreDraining makes the node drain, as the store says it did before
// the restart; nothing is written.
func (a *nodeAdmin) restoreDraining() { a.draining.Store(true) }

// isRecovering reports whether the last run's tasks are being recovered.
func (a *nodeAdmin) isRecovering() bool { return a.recovering.Load() }

// setRecovering sets whether they are.
func (a *nodeAdmin) setRecovering(on bool) { a.recovering.Store(on) }
