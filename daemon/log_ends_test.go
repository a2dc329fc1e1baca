package daemon

import (
	"testing"
	"time"
)

func TestLogEnds(t *testing.T) {
	var l logEnds
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		case <-time.After(10 * time.Millisecond):
			return false
		}
	}
	a, unA := l.watch("t1")
	b, unB := l.watch("t1")
	other, unOther := l.watch("t2")
	if closed(a) || closed(b) {
		t.Fatal("watch: closed before ending")
	}
	l.ending("t1")
	if !closed(a) || !closed(b) {
		t.Error("ending(t1) did not close both watchers' channels")
	}
	if closed(other) {
		t.Error("ending(t1) closed t2's channel")
	}
	unA()
	unB()
	unB()          // a second unwatch does nothing
	l.ending("t1") // nothing watched: nothing to close
	unOther()
	if n := len(l.m); n != 0 {
		t.Errorf("entries left after every unwatch: %d, want 0", n)
	}
	// A watch after ending gets a fresh channel (the follower reads the
	// end marker from the files).
	c, unC := l.watch("t1")
	defer unC()
	if closed(c) {
		t.Error("watch after ending: channel closed, want a fresh one")
	}
}
