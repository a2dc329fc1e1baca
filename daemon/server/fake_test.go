package server

import (
	"context"
	"errors"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pcnode/pcnode/daemon"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// fakeNode is a Node for tests of what a service does before it calls the
// node: the methods a test reaches are hand-written here and record the
// call; any other method is the embedded nil Node and panics.
type fakeNode struct {
	Node
	calls []string

	encoded [][]byte // ListTasksEncoded's page
	next    string   // and its next page token
}

var errFake = errors.New("fake node: not implemented")

func (f *fakeNode) RequestCancel(ctx context.Context, id string, grace *durationpb.Duration) (*pcnodev1.Task, error) {
	f.calls = append(f.calls, "RequestCancel")
	return nil, errFake
}

func (f *fakeNode) ClearGPUHealth(ctx context.Context, uuid string) (*pcnodev1.Gpu, error) {
	f.calls = append(f.calls, "ClearGPUHealth")
	return nil, errFake
}

// ListTasksEncoded returns f.encoded and f.next.
func (f *fakeNode) ListTasksEncoded(ctx context.Context, q daemon.TaskQuery) ([][]byte, string, error) {
	f.calls = append(f.calls, "ListTasksEncoded")
	return f.encoded, f.next, nil
}
