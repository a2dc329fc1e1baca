package client

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// fakeTasks is a hand-written TaskService: each RPC the tests need is a
// function field; calls are counted.
type fakeTasks struct {
	pcnodev1.UnimplementedTaskServiceServer

	getTask    func(context.Context, *pcnodev1.GetTaskRequest) (*pcnodev1.GetTaskResponse, error)
	submitTask func(context.Context, *pcnodev1.SubmitTaskRequest) (*pcnodev1.SubmitTaskResponse, error)
	runTask    func(*pcnodev1.RunTaskRequest, grpc.ServerStreamingServer[pcnodev1.RunTaskResponse]) error
	streamLogs func(*pcnodev1.StreamLogsRequest, grpc.ServerStreamingServer[pcnodev1.StreamLogsResponse]) error
	watchTasks func(*pcnodev1.WatchTasksRequest, grpc.ServerStreamingServer[pcnodev1.WatchTasksResponse]) error

	getCalls, submitCalls, streamLogsCalls, watchCalls atomic.Int64
}

func (f *fakeTasks) GetTask(ctx context.Context, req *pcnodev1.GetTaskRequest) (*pcnodev1.GetTaskResponse, error) {
	f.getCalls.Add(1)
	return f.getTask(ctx, req)
}

func (f *fakeTasks) SubmitTask(ctx context.Context, req *pcnodev1.SubmitTaskRequest) (*pcnodev1.SubmitTaskResponse, error) {
	f.submitCalls.Add(1)
	return f.submitTask(ctx, req)
}

func (f *fakeTasks) RunTask(req *pcnodev1.RunTaskRequest, s grpc.ServerStreamingServer[pcnodev1.RunTaskResponse]) error {
	return f.runTask(req, s)
}

func (f *fakeTasks) StreamLogs(req *pcnodev1.StreamLogsRequest, s grpc.ServerStreamingServer[pcnodev1.StreamLogsResponse]) error {
	f.streamLogsCalls.Add(1)
	return f.streamLogs(req, s)
}

func (f *fakeTasks) WatchTasks(req *pcnodev1.WatchTasksRequest, s grpc.ServerStreamingServer[pcnodev1.WatchTasksResponse]) error {
	f.watchCalls.Add(1)
	return f.watchTasks(req, s)
}

// peerCN is the common name of the caller's client certificate ("" without TLS).
func peerCN(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return ""
	}
	return ti.State.PeerCertificates[0].Subject.CommonName
}

// echoCN answers GetTask with a task whose submitted_by is the caller's CN.
func echoCN(ctx context.Context, req *pcnodev1.GetTaskRequest) (*pcnodev1.GetTaskResponse, error) {
	return &pcnodev1.GetTaskResponse{Task: &pcnodev1.Task{Id: req.GetTaskId(), SubmittedBy: peerCN(ctx)}}, nil
}

// serveUnix serves f on a fresh unix socket and returns its path.
func serveUnix(t *testing.T, f *fakeTasks) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pcc-") // t.TempDir is too long for a socket path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "api.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, lis, f)
	return sock
}

// serveTLS serves f on a loopback TCP port with cfg and returns host:port.
func serveTLS(t *testing.T, f *fakeTasks, cfg *tls.Config) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, lis, f, grpc.Creds(credentials.NewTLS(cfg)))
	return lis.Addr().String()
}

func serve(t *testing.T, lis net.Listener, f *fakeTasks, opts ...grpc.ServerOption) {
	srv := grpc.NewServer(opts...)
	pcnodev1.RegisterTaskServiceServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
}

// dial dials address with opts, closing the client when t ends.
func dial(t *testing.T, address string, opts ...Option) *Client {
	t.Helper()
	c, err := Dial(address, opts...)
	if err != nil {
		t.Fatalf("Dial(%q) = %v", address, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
