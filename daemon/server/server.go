package server

import (
	"fmt"

	"google.golang.org/grpc"

	"github.com/pcnode/pcnode/daemon"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Node is what the services need of the node, all together: the local node
// (*daemon.Daemon) implements it.
type Node interface {
	taskNode
	nodeAPI
	imageNode
}

var _ Node = (*daemon.Daemon)(nil)

// Register registers TaskService, NodeService and ImageService on s, each
// over n.
func Register(s grpc.ServiceRegistrar, n Node) {
	pcnodev1.RegisterTaskServiceServer(s, &taskService{d: n})
	pcnodev1.RegisterNodeServiceServer(s, &nodeService{d: n})
	pcnodev1.RegisterImageServiceServer(s, &imageService{d: n})
}

// NewTaskService is TaskService over n, for a caller that serves it
// itself (tests driving one stream by hand).
func NewTaskService(n Node) pcnodev1.TaskServiceServer { return &taskService{d: n} }

// problems collects the field violations of a request.
type problems []*pcnodev1.Problem

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, &pcnodev1.Problem{Field: field, Description: fmt.Sprintf(format, args...)})
}

// invalid is the refusal of a request for p (daemon.Invalid), ordered by
// field; the error mapper makes it INVALID_ARGUMENT.
func invalid(p problems) error {
	return daemon.Invalid(p)
}
