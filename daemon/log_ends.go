package daemon

import "sync"

// logEnds wakes the followers of a task's log when the log is about to
// end. A follower (ReadLog with Follow) polls the log's files every 100 ms;
// woken (logs.ReadOptions.Wake) it looks every few milliseconds for a
// while, so that it sees the end marker right after the log driver writes
// it, and RunTask, which sends the final state only after the whole log,
// answers that much sooner. Clean up calls ending when it starts to delete
// the container (whose task delete ends the driver's copy: the driver
// then seals the log), sealLog once the log is sealed.
//
// The zero value is ready to use. An entry lives while a follower watches
// it: ending removes it, and the last follower's unwatch does.
type logEnds struct {
	mu sync.Mutex
	m  map[string]*logEnd
}

type logEnd struct {
	ch   chan struct{} // closed by ending
	refs int
}

// watch returns a channel that is closed when task id's log ends, and the
// function to call when the follower stops watching.
func (l *logEnds) watch(id string) (<-chan struct{}, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*logEnd{}
	}
	e := l.m[id]
	if e == nil {
		e = &logEnd{ch: make(chan struct{})}
		l.m[id] = e
	}
	e.refs++
	var once sync.Once
	return e.ch, func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			e.refs--
			if e.refs == 0 && l.m[id] == e {
				delete(l.m, id)
			}
		})
	}
}

// ending wakes every follower of task id's log. A follower that starts
// watching after it polls as usual.
func (l *logEnds) ending(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.m[id]; e != nil {
		close(e.ch)
		delete(l.m, id)
	}
}
