package daemon

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamLimiter counts the open streams of each client and of the node
// against [streams] max_per_client and max_total. It is pure bookkeeping:
// the stream interceptor (limitStreams) is its only user.
//
// When many streams have ended (reclaimDrop fewer open than the most seen
// since the last time), it calls onDrop, which the daemon uses to give the
// memory those streams used back to the system (reclaimMemory): the Go
// runtime would otherwise keep it until a later collection, which an idle
// daemon may not run for minutes.
type streamLimiter struct {
	maxPerClient, maxTotal int
	onDrop                 func()

	mu        sync.Mutex
	total     int
	peak      int // most streams open since onDrop was last called
	perClient map[string]int
}

// reclaimDrop is how many fewer streams than the recent peak make the
// limiter call onDrop.
const reclaimDrop = 16

func newStreamLimiter(maxPerClient, maxTotal int) *streamLimiter {
	return &streamLimiter{maxPerClient: maxPerClient, maxTotal: maxTotal, perClient: map[string]int{}}
}

// streamLimitError is a stream refused by a cap.
type streamLimitError struct {
	key    string // config key of the cap
	limit  int
	client string
}

func (e *streamLimitError) Error() string {
	if e.key == "streams.max_per_client" {
		return fmt.Sprintf("client %s already has %d streams open, the most %s allows; close one and retry", e.client, e.limit, e.key)
	}
	return fmt.Sprintf("the node already has %d streams open, the most %s allows; retry later", e.limit, e.key)
}

// status is the error's RESOURCE_EXHAUSTED status, with a QuotaFailure
// naming the cap.
func (e *streamLimitError) status() error {
	st := status.New(codes.ResourceExhausted, e.Error())
	if d, err := st.WithDetails(&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
		Subject: e.key, Description: fmt.Sprintf("at most %d streams (client %s)", e.limit, e.client),
	}}}); err == nil {
		st = d
	}
	return st.Err()
}

// acquire takes a slot for one stream of client, or says which cap is
// full. release gives the slot back; calling it more than once is harmless.
func (l *streamLimiter) acquire(client string) (release func(), err *streamLimitError) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perClient[client] >= l.maxPerClient {
		return nil, &streamLimitError{key: "streams.max_per_client", limit: l.maxPerClient, client: client}
	}
	if l.total >= l.maxTotal {
		return nil, &streamLimitError{key: "streams.max_total", limit: l.maxTotal, client: client}
	}
	l.perClient[client]++
	l.total++
	l.peak = max(l.peak, l.total)
	var once sync.Once
	return func() { once.Do(func() { l.release(client) }) }, nil
}

func (l *streamLimiter) release(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perClient[client]--; l.perClient[client] <= 0 {
		delete(l.perClient, client)
	}
	if l.peak-l.total >= reclaimDrop {
		l.peak = l.total
		if l.onDrop != nil {
			l.onDrop()
		}
	}
}

// reclaimDelay is how long after the last big drop in open streams the
// daemon returns freed memory to the system: a burst of streams ending
// causes one collection, not one per stream.
const reclaimDelay = time.Second

// memoryReclaimer runs debug.FreeOSMemory once, reclaimDelay after the last
// request.
type memoryReclaimer struct {
	mu    sync.Mutex
	timer *time.Timer
}

// freeMemory collects twice, so that what sync.Pools held (gRPC's buffers
// among them) is freed too, and returns the free memory to the system.
func freeMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

func (r *memoryReclaimer) request() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timer == nil {
		r.timer = time.AfterFunc(reclaimDelay, freeMemory)
		return
	}
	r.timer.Reset(reclaimDelay)
}

// open returns the streams open in total and for client.
func (l *streamLimiter) open(client string) (total, ofClient int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.perClient[client]
}

// limitStreams is the stream interceptor that enforces the caps on every
// streaming RPC the server serves (server, client and bidirectional
// streams alike), before the handler runs.
func (d *Daemon) limitStreams(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	release, lerr := d.streams.acquire(clientKey(ss.Context()))
	if lerr != nil {
		return lerr.status()
	}
	defer release()
	return h(srv, ss)
}
