package server

import (
	"context"
	"testing"

	"github.com/pcnode/pcnode/daemon"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// A uuid that is not a GPU's is refused on the uuid field before the node
// sees it.
func TestClearGpuHealthValidatesUUID(t *testing.T) {
	for _, tc := range []struct{ name, uuid string }{
		{"empty", ""},
		{"not a uuid", "../../etc/passwd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &fakeNode{}
			_, err := (&nodeService{d: n}).ClearGpuHealth(context.Background(), &pcnodev1.ClearGpuHealthRequest{Uuid: tc.uuid})
			if ps, ok := daemon.InvalidProblems(err); !ok || len(ps) != 1 || ps[0].GetField() != "uuid" {
				t.Fatalf("ClearGpuHealth(%q) = %v, want INVALID_ARGUMENT on uuid", tc.uuid, err)
			}
			if len(n.calls) != 0 {
				t.Errorf("ClearGpuHealth(%q) called the node: %v, want no call", tc.uuid, n.calls)
			}
		})
	}
}
