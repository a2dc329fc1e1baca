package daemon

import (
	"slices"
	"testing"
	"time"

	"github.com/pcnode/pcnode/daemon/runtime"
)

func TestTaskTableAdmit(t *testing.T) {
	var tt taskTable // the zero value is ready
	qt := &queuedTask{auth: &runtime.Auth{Username: "u"}}
	tt.addQueued("t1", qt)
	var got *queuedTask
	tt.admit("t1", func(q *queuedTask) *runner { got = q; return &runner{id: "t1"} })
	if got != qt {
		t.Errorf("admit(t1) gave start %v, want the queued task %v", got, qt)
	}
	if tt.queued["t1"] != nil || tt.runners["t1"] == nil {
		t.Errorf("after admit(t1): queued %v, runners %v; want it moved to runners", tt.queued, tt.runners)
	}
	got = qt
	tt.admit("t2", func(q *queuedTask) *runner { got = q; return &runner{id: "t2"} })
	if got != nil || tt.runners["t2"] == nil {
		t.Errorf("admit(t2) of a task never queued: start got %v, runners %v; want nil and a runner", got, tt.runners)
	}
	if rs := tt.closeAll(); len(rs) != 2 {
		t.Errorf("closeAll() = %d runners, want 2", len(rs))
	}
	tt.addQueued("t3", &queuedTask{})
	called := false
	tt.admit("t3", func(*queuedTask) *runner { called = true; return &runner{id: "t3"} })
	if called || tt.runners["t3"] != nil || tt.queued["t3"] != nil {
		t.Errorf("admit(t3) while closing: start called %v, runners %v, queued %v; want nothing started and t3 forgotten", called, tt.runners, tt.queued)
	}
}

func TestTaskTableQueued(t *testing.T) {
	var tt taskTable
	now := time.Now()
	tt.addQueued("old", &queuedTask{deadline: now.Add(-time.Second)})
	tt.addQueued("new", &queuedTask{deadline: now.Add(time.Hour)})
	tt.addQueued("none", &queuedTask{})
	if got := tt.expiredQueued(now); !slices.Equal(got, []string{"old"}) {
		t.Errorf("expiredQueued(now) = %v, want [old]", got)
	}
	tt.dropQueued("old")
	if got := tt.expiredQueued(now); len(got) != 0 {
		t.Errorf("expiredQueued(now) after dropQueued(old) = %v, want none", got)
	}

	auth := &runtime.Auth{Username: "u", Password: "p"}
	if !tt.giveAuth("none", auth) || tt.queued["none"].auth != auth {
		t.Errorf("giveAuth(none) to a task without credentials did not give them: %v", tt.queued["none"].auth)
	}
	if tt.giveAuth("none", &runtime.Auth{Username: "other"}) || tt.queued["none"].auth != auth {
		t.Errorf("giveAuth(none) replaced credentials it had: %v", tt.queued["none"].auth)
	}
	if tt.giveAuth("missing", auth) {
		t.Error("giveAuth(missing) = true for a task not queued")
	}
}

func TestTaskTableDropIfCancelled(t *testing.T) {
	for _, tc := range []struct {
		name              string
		cancelled, remove bool
		want              bool
	}{
		{"not cancelled", false, true, false},
		{"cancelled, scheduler has let go", true, false, false},
		{"cancelled, taken back", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tt taskTable
			qt := &queuedTask{cancelled: tc.cancelled}
			tt.addQueued("t", qt)
			removed := false
			got := tt.dropIfCancelled("t", qt, func(id string) bool { removed = true; return tc.remove })
			if got != tc.want {
				t.Errorf("dropIfCancelled() = %v, want %v", got, tc.want)
			}
			if tc.cancelled != removed {
				t.Errorf("dropIfCancelled() asked the scheduler %v, want %v", removed, tc.cancelled)
			}
			if still := tt.queued["t"] != nil; still == tc.want {
				t.Errorf("after dropIfCancelled() = %v the task is queued: %v", got, still)
			}
		})
	}
}
