package server

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon"
	"github.com/pcnode/pcnode/gpu"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// nodeAPI is what NodeService needs of the node: the local node's
// operations on the node itself (*daemon.Daemon: local_node.go). The service sees
// nothing else of the daemon.
type nodeAPI interface {
	NodeInfo(ctx context.Context) (*pcnodev1.Node, error)
	WatchNode() chan pcnodev1.NodeChange
	UnwatchNode(c chan pcnodev1.NodeChange)
	SetDraining(ctx context.Context, draining bool) error
	ClearGPUHealth(ctx context.Context, uuid string) (*pcnodev1.Gpu, error)
}

var _ nodeAPI = (*daemon.Daemon)(nil)

// nodeService is NodeService: each RPC checks its request, calls the local
// node (d) and converts the result; WatchNode's loop is here.
type nodeService struct {
	pcnodev1.UnimplementedNodeServiceServer
	d nodeAPI
}

func (s *nodeService) GetNode(ctx context.Context, _ *pcnodev1.GetNodeRequest) (*pcnodev1.GetNodeResponse, error) {
	n, err := s.d.NodeInfo(ctx)
	if err != nil {
		return nil, err
	}
	return &pcnodev1.GetNodeResponse{Node: n}, nil
}

func (s *nodeService) WatchNode(req *pcnodev1.WatchNodeRequest, stream pcnodev1.NodeService_WatchNodeServer) error {
	interval := 30 * time.Second
	if hb := req.GetHeartbeatInterval(); hb != nil {
		if err := hb.CheckValid(); err != nil || hb.AsDuration() < 0 {
			var p problems
			p.add("heartbeat_interval", "must be a non-negative duration")
			return invalid(p)
		}
		if hb.AsDuration() > 0 {
			interval = max(hb.AsDuration(), time.Second)
		}
	}
	ctx := stream.Context()
	changes := s.d.WatchNode()
	defer s.d.UnwatchNode(changes)
	why := pcnodev1.NodeChange_NODE_CHANGE_INITIAL
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.d.NodeInfo(ctx)
		if err != nil {
			return err
		}
		if err := stream.Send(&pcnodev1.WatchNodeResponse{Change: why, Node: n, Time: timestamppb.Now()}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case why = <-changes:
		case <-t.C:
			why = pcnodev1.NodeChange_NODE_CHANGE_HEARTBEAT
		}
	}
}

func (s *nodeService) DrainNode(ctx context.Context, _ *pcnodev1.DrainNodeRequest) (*pcnodev1.DrainNodeResponse, error) {
	if err := s.d.SetDraining(ctx, true); err != nil {
		return nil, err
	}
	n, err := s.d.NodeInfo(ctx)
	return &pcnodev1.DrainNodeResponse{Node: n}, err
}

func (s *nodeService) ResumeNode(ctx context.Context, _ *pcnodev1.ResumeNodeRequest) (*pcnodev1.ResumeNodeResponse, error) {
	if err := s.d.SetDraining(ctx, false); err != nil {
		return nil, err
	}
	n, err := s.d.NodeInfo(ctx)
	return &pcnodev1.ResumeNodeResponse{Node: n}, err
}

func (s *nodeService) ClearGpuHealth(ctx context.Context, req *pcnodev1.ClearGpuHealthRequest) (*pcnodev1.ClearGpuHealthResponse, error) {
	if err := gpu.ValidateUUID(req.GetUuid()); err != nil {
		var p problems
		p.add("uuid", "%v", err)
		return nil, invalid(p)
	}
	g, err := s.d.ClearGPUHealth(ctx, req.GetUuid())
	if err != nil {
		return nil, err
	}
	return &pcnodev1.ClearGpuHealthResponse{Gpu: g}, nil
}
