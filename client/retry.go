package client

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// apiFiles are the proto files whose services the client calls.
var apiFiles = []protoreflect.FileDescriptor{
	pcnodev1.File_pcnode_v1_task_service_proto,
	pcnodev1.File_pcnode_v1_node_service_proto,
	pcnodev1.File_pcnode_v1_image_service_proto,
}

// Default retry policy of the calls without side effects.
const (
	defaultRetryAttempts   = 4
	defaultRetryInitial    = 100 * time.Millisecond
	defaultRetryMaxBackoff = 2 * time.Second
)

// RetriedMethods returns the full names ("/pcnode.v1.TaskService/GetTask")
// of the methods the client retries on Unavailable: exactly those the
// proto marks idempotency_level = NO_SIDE_EFFECTS, sorted.
func RetriedMethods() []string {
	var out []string
	for _, m := range retriedMethods() {
		out = append(out, "/"+m.Service+"/"+m.Method)
	}
	return out
}

// retriedMethods reads the NO_SIDE_EFFECTS methods from the descriptors.
func retriedMethods() []methodName {
	var out []methodName
	for _, f := range apiFiles {
		for i := range f.Services().Len() {
			svc := f.Services().Get(i)
			for j := range svc.Methods().Len() {
				if m := svc.Methods().Get(j); noSideEffects(m) {
					out = append(out, methodName{Service: string(svc.FullName()), Method: string(m.Name())})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b methodName) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.Method, b.Method))
	})
	return out
}

func noSideEffects(m protoreflect.MethodDescriptor) bool {
	opts, ok := m.Options().(*descriptorpb.MethodOptions)
	return ok && opts.GetIdempotencyLevel() == descriptorpb.MethodOptions_NO_SIDE_EFFECTS
}

// Service config JSON (https://github.com/grpc/grpc/blob/master/doc/service_config.md).
type serviceConfig struct {
	MethodConfig []methodConfig `json:"methodConfig"`
}

type methodConfig struct {
	Name        []methodName `json:"name"`
	RetryPolicy retryPolicy  `json:"retryPolicy"`
}

type methodName struct {
	Service string `json:"service"`
	Method  string `json:"method"`
}

type retryPolicy struct {
	MaxAttempts          int      `json:"maxAttempts"`
	InitialBackoff       string   `json:"initialBackoff"`
	MaxBackoff           string   `json:"maxBackoff"`
	BackoffMultiplier    float64  `json:"backoffMultiplier"`
	RetryableStatusCodes []string `json:"retryableStatusCodes"`
}

// retryServiceConfig is the default service config: the NO_SIDE_EFFECTS
// methods retried on UNAVAILABLE with exponential backoff. gRPC retries a
// streaming call only until its first response arrived; after that a
// dropped stream is the caller's to resume (FollowLogs and WatchTasks do).
func retryServiceConfig(attempts int, initial, maxBackoff time.Duration) (string, error) {
	if attempts < 2 || attempts > 5 {
		return "", fmt.Errorf("retry policy: attempts %d, want 2 to 5", attempts)
	}
	if initial <= 0 || maxBackoff < initial {
		return "", fmt.Errorf("retry policy: backoff %v to %v, want 0 < initial <= max", initial, maxBackoff)
	}
	mc := methodConfig{RetryPolicy: retryPolicy{
		MaxAttempts:          attempts,
		InitialBackoff:       fmt.Sprintf("%.3fs", initial.Seconds()),
		MaxBackoff:           fmt.Sprintf("%.3fs", maxBackoff.Seconds()),
		BackoffMultiplier:    2,
		RetryableStatusCodes: []string{"UNAVAILABLE"},
	}}
	mc.Name = retriedMethods()
	b, err := json.Marshal(serviceConfig{MethodConfig: []methodConfig{mc}})
	return string(b), err
}
