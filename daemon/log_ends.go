package daemon

import "sync"

// logEnds wakes the followers of a task's log when the log has ended.
// A follower (ReadLog with Follow) polls the log's files; without a wake
// it would see the end marker up to one poll interval (100 ms) after the
// log was sealed, and RunTask, which sends the final state only after the
// whole log, would answer that much later. sealLog calls ended once the
// end marker is written (by the log driver or by sealLog itself).
//
// The zero value is ready to use. An entry lives while a follower watches
// it: ended removes it, and the last follower's unwatch does.
type logEnds struct {
	mu sync.Mutex
	m  map[string]*logEnd
}

type logEnd struct {
	ch   chan struct{} // closed by ended
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

// ended wakes every follower of task id's log. A follower that starts
// watching after it reads the end marker from the files.
func (l *logEnds) ended(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.m[id]; e != nil {
		close(e.ch)
		delete(l.m, id)
	}
}
