package metrics

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// gRPC call types, as go-grpc-middleware's prometheus provider names them.
const (
	typeUnary        = "unary"
	typeClientStream = "client_stream"
	typeServerStream = "server_stream"
	typeBidiStream   = "bidi_stream"
)

// splitMethod splits "/pkg.Service/Method" into service and method.
func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndex(full, "/"); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}

func streamType(clientStream, serverStream bool) string {
	switch {
	case clientStream && serverStream:
		return typeBidiStream
	case clientStream:
		return typeClientStream
	case serverStream:
		return typeServerStream
	}
	return typeUnary
}

// InitGRPC creates the gRPC families' series of every method srv serves
// at 0 (handled with code OK), so that they exist before the first call.
// Call it after every service is registered.
func (m *Metrics) InitGRPC(info map[string]grpc.ServiceInfo) {
	for svc, si := range info {
		for _, mi := range si.Methods {
			typ := streamType(mi.IsClientStream, mi.IsServerStream)
			m.grpcStarted.WithLabelValues(svc, mi.Name, typ)
			m.grpcHandled.WithLabelValues(svc, mi.Name, typ, "OK")
			m.grpcDuration.WithLabelValues(svc, mi.Name, typ)
		}
	}
}

// The server calls interceptors only for the methods it registered (an
// unknown method is answered Unimplemented before them), so the method
// labels are bounded by the services served.

func (m *Metrics) begin(full, typ string) func(err error) {
	svc, method := splitMethod(full)
	m.grpcStarted.WithLabelValues(svc, method, typ).Inc()
	start := time.Now()
	return func(err error) {
		m.grpcHandled.WithLabelValues(svc, method, typ, status.Code(err).String()).Inc()
		m.grpcDuration.WithLabelValues(svc, method, typ).Observe(time.Since(start).Seconds())
	}
}

// UnaryServerInterceptor counts and times unary calls. Put it first in
// the chain so that calls refused by authentication count too.
func (m *Metrics) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		end := m.begin(info.FullMethod, typeUnary)
		resp, err := h(ctx, req)
		end(err)
		return resp, err
	}
}

// StreamServerInterceptor counts and times streaming calls (their whole
// life).
func (m *Metrics) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		end := m.begin(info.FullMethod, streamType(info.IsClientStream, info.IsServerStream))
		err := h(srv, ss)
		end(err)
		return err
	}
}
