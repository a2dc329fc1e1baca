package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pcnode/pcnode/daemon"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// A grace period out of bounds is refused with one grace_period problem,
// and the node is never asked to cancel.
func TestCancelTaskValidatesGrace(t *testing.T) {
	id := store.NewID(time.Now())
	for _, tc := range []struct {
		name  string
		grace *durationpb.Duration
		want  string
	}{
		{"negative", durationpb.New(-time.Second), "must not be negative"},
		{"absurd", durationpb.New(25 * time.Hour), "must be at most 24h0m0s"},
		{"malformed", &durationpb.Duration{Seconds: 1, Nanos: -5}, "different signs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &fakeNode{}
			s := &taskService{d: n}
			_, err := s.CancelTask(context.Background(), &pcnodev1.CancelTaskRequest{TaskId: id, GracePeriod: tc.grace})
			ps, ok := daemon.InvalidProblems(err)
			if !ok || len(ps) != 1 {
				t.Fatalf("CancelTask(grace %v) = %v, want INVALID_ARGUMENT with one problem", tc.grace, err)
			}
			if p := ps[0]; p.GetField() != "grace_period" || !strings.Contains(p.GetDescription(), tc.want) {
				t.Errorf("CancelTask(grace %v) problem = %s: %s, want grace_period: ...%s...", tc.grace, p.GetField(), p.GetDescription(), tc.want)
			}
			if len(n.calls) != 0 {
				t.Errorf("CancelTask(grace %v) called the node: %v, want no call", tc.grace, n.calls)
			}
		})
	}
}
