package daemon

import (
	"sync"
	"time"

	"github.com/pcnode/pcnode/daemon/runtime"
)

// taskTable is what the daemon holds in memory of the tasks it has taken
// up: the queued ones (startup deadline, pull credentials, a cancel that
// came before their runner started) and the runners of the preparing and
// running ones. One lock guards both, so that launch moves a task from
// queued to runners in one step and cancelTask, looking at both at once,
// finds it in exactly one place (or in none: it ended, or is not taken up
// yet). Its zero value is ready to use.
//
// Daemon embeds it. The lifecycle's files (runner.go, recover.go) and
// cancelTask still reach its fields under mu, as they did when these were
// Daemon's own; everything else goes through its methods.
type taskTable struct {
	mu      sync.Mutex
	runners map[string]*runner     // preparing and running tasks
	queued  map[string]*queuedTask // queued tasks: deadlines, pull credentials
	closing bool                   // Close has begun: admit starts nothing more

	// unchecked holds the final tasks whose log the start's check
	// (checkRecentLogs) has not looked at yet; its own lock, since a
	// reader asks it on every read of a final task's log.
	uncheckedMu sync.Mutex
	unchecked   map[string]bool
	checkDone   chan struct{} // closed when the check has ended
}

// queuedTask is what the daemon keeps in memory about a queued task.
type queuedTask struct {
	auth      *runtime.Auth // from the spec; never stored
	deadline  time.Time     // startup deadline; zero: none
	cancelled bool          // cancelled before the scheduler let go of it (cancelTask); under taskTable.mu
}

// initLocked makes the maps of a zero taskTable. Call with mu held.
func (t *taskTable) initLocked() {
	if t.runners == nil {
		t.runners = map[string]*runner{}
	}
	if t.queued == nil {
		t.queued = map[string]*queuedTask{}
	}
}

// addQueued records queued task id.
func (t *taskTable) addQueued(id string, qt *queuedTask) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.initLocked()
	t.queued[id] = qt
}

// dropQueued forgets queued task id.
func (t *taskTable) dropQueued(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.queued, id)
}

// giveAuth gives queued task id the registry credentials auth when it has
// none (a restart lost them), and reports whether it did.
func (t *taskTable) giveAuth(id string, auth *runtime.Auth) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if qt := t.queued[id]; qt != nil && qt.auth == nil {
		qt.auth = auth
		return true
	}
	return false
}

// dropIfCancelled forgets queued task id, qt, when a cancel was recorded on
// it and remove (the scheduler's, called under the lock) takes it back,
// and reports whether it did.
func (t *taskTable) dropIfCancelled(id string, qt *queuedTask, remove func(string) bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if qt.cancelled && remove(id) {
		delete(t.queued, id)
		return true
	}
	return false
}

// admit moves task id from queued to runners: start, called under the
// lock with the task's queuedTask (nil when there is none), returns its
// runner, started. Once Close has begun nothing is started.
func (t *taskTable) admit(id string, start func(qt *queuedTask) *runner) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.initLocked()
	qt := t.queued[id]
	delete(t.queued, id)
	if t.closing {
		return
	}
	t.runners[id] = start(qt)
}

// expiredQueued returns the queued tasks whose startup deadline is before
// now.
func (t *taskTable) expiredQueued(now time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for id, q := range t.queued {
		if !q.deadline.IsZero() && now.After(q.deadline) {
			out = append(out, id)
		}
	}
	return out
}

// closeAll marks the table closing, so that admit starts nothing more, and
// returns the runners it holds.
func (t *taskTable) closeAll() []*runner {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closing = true
	out := make([]*runner, 0, len(t.runners))
	for _, r := range t.runners {
		out = append(out, r)
	}
	return out
}

// setUnchecked records ids as the logs the start's check is to look at,
// and returns the channel it closes when it is done.
func (t *taskTable) setUnchecked(ids []string) chan struct{} {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	t.uncheckedMu.Lock()
	defer t.uncheckedMu.Unlock()
	t.unchecked = m
	t.checkDone = make(chan struct{})
	return t.checkDone
}

// recentLogsChecked returns the channel closed when the start's check of
// recent logs has ended; nil before it began.
func (t *taskTable) recentLogsChecked() <-chan struct{} {
	t.uncheckedMu.Lock()
	defer t.uncheckedMu.Unlock()
	return t.checkDone
}

// isUnchecked reports whether task id's log is still to be checked.
func (t *taskTable) isUnchecked(id string) bool {
	t.uncheckedMu.Lock()
	defer t.uncheckedMu.Unlock()
	return t.unchecked[id]
}

// checked records that task id's log was checked.
func (t *taskTable) checked(id string) {
	t.uncheckedMu.Lock()
	defer t.uncheckedMu.Unlock()
	delete(t.unchecked, id)
}
