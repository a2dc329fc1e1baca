package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// maxKeyBytes is the longest idempotency key pcnoded takes.
const maxKeyBytes = 128

// Placement is where the pool put a task.
type Placement struct {
	// Key is the idempotency key (generated when Submit was given none).
	Key string
	// Node is the pool's name of the node that holds the task.
	Node string
	// Task is the task as the node returned it.
	Task *pcnodev1.Task
	// Existing is true when the node already had a task for the key.
	Existing bool
}

// placement is the pool's memory of one key: the node it is bound to (once
// the submission may have reached it, the key is never sent elsewhere) and
// the task id once the node answered.
type placement struct {
	mu sync.Mutex // held while the key is being submitted
	// spec is kept to resubmit the key (Wait after an unknown outcome);
	// it holds the spec's registry credentials, in memory only.
	spec   *pcnodev1.TaskSpec
	node   string
	taskID string
}

// Submit places spec on one node under idempotencyKey and returns where.
//
// # Placement
//
// The task's requests are read like pcnoded does (requests, else limits;
// GPU count and the GPU selector's model and memory); when the spec sets
// neither CPU nor memory, one reachable node's ResolveTask supplies the
// template's. Unreachable, draining and too small nodes are left out
// (each with its reason). A node with room now and an empty queue is
// preferred, the least loaded after placement first (its largest share of
// CPU, memory and GPUs), counting the tasks this pool placed that the
// node's reports do not show yet, so a burst spreads instead of piling on
// one node. When no node has room now the task goes to the node with the
// shortest queue for its size, where it waits. When no node can take it at
// all the error is a *NoFitError with every node's reason (errors.Is
// ErrNoNodeFits).
//
// # Failover and the at-most-once rule
//
// A submission that fails before it can have reached the node (no
// connection: nothing was sent) is tried on the next node. A node that
// answers ResourceExhausted or FailedPrecondition (draining) did not create
// the task, so the next node is tried too. But once a request may have
// reached a node and no answer came (the connection died after sending,
// or the attempt timed out), the outcome is unknown: the task may exist
// there. Placing it elsewhere could run it twice, so Submit does not: it
// retries that same node with the same key, with backoff, until the node
// answers or ctx ends (then the error wraps ErrOutcomeUnknown). The pool
// remembers each key's node for its lifetime: submitting a key again
// always goes to the node it was bound to, and the node's own idempotency
// returns the existing task. The bindings live in the Pool's memory: a
// scheduler that restarts restores them with WithBindings (from Placed),
// or a key could be placed on a second node. An empty idempotencyKey gets
// a random one (Placement.Key). Other errors from a node (InvalidArgument,
// PermissionDenied, AlreadyExists, …) are returned as *Error.
func (p *Pool) Submit(ctx context.Context, spec *pcnodev1.TaskSpec, idempotencyKey string) (*Placement, error) {
	key, err := checkKey(idempotencyKey)
	if err != nil {
		return nil, err
	}
	pl := p.entry(key)
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.node != "" {
		return p.submitBound(ctx, key, pl, spec)
	}
	d, err := p.demandFor(ctx, spec)
	if err != nil {
		return nil, err
	}
	req := &pcnodev1.SubmitTaskRequest{Spec: spec, IdempotencyKey: key}
	refused := map[string]string{}
	for {
		order, reasons := rank(d, p.viewsExcept(refused))
		if len(order) == 0 {
			for n, r := range refused {
				reasons[n] = r
			}
			return nil, newNoFitError(reasons)
		}
		n := p.nodes[order[0]]
		n.reserve(key, d)
		resp, sent, err := p.attempt(ctx, n, req)
		switch {
		case err == nil:
			pl.spec, pl.node, pl.taskID = spec, n.name, resp.GetTask().GetId()
			n.accepted(key, resp.GetTask().GetCreateTime().AsTime())
			return &Placement{Key: key, Node: n.name, Task: resp.GetTask(), Existing: resp.GetExisting()}, nil
		case !sent:
			// Nothing reached the node: another may take the task.
			n.release(key)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			refused[n.name] = "unreachable: " + describe(err)
			continue
		case answered(err):
			n.release(key)
			switch Code(err) {
			case codes.ResourceExhausted, codes.FailedPrecondition:
				refused[n.name] = FromError(err).Error()
				continue
			case codes.AlreadyExists:
				// The node holds a task for this key already: the key
				// belongs to that node.
				pl.spec, pl.node = spec, n.name
			}
			return nil, fmt.Errorf("node %s: %w", n.name, FromError(err))
		default:
			// Sent, no answer: bound to this node from now on.
			n.release(key)
			pl.spec, pl.node = spec, n.name
			return p.submitBound(ctx, key, pl, spec)
		}
	}
}

// submitBound submits to the node the key is bound to, retrying until the
// node answers or ctx ends.
func (p *Pool) submitBound(ctx context.Context, key string, pl *placement, spec *pcnodev1.TaskSpec) (*Placement, error) {
	n := p.nodes[pl.node]
	if pl.spec == nil {
		pl.spec = spec // restored by WithBindings: keep it for Wait
	}
	req := &pcnodev1.SubmitTaskRequest{Spec: spec, IdempotencyKey: key}
	b := p.backoff()
	for {
		resp, _, err := p.attempt(ctx, n, req)
		if err == nil {
			pl.taskID = resp.GetTask().GetId()
			if !resp.GetExisting() {
				n.reserve(key, demandOf(spec.GetResources()))
				n.accepted(key, resp.GetTask().GetCreateTime().AsTime())
			}
			return &Placement{Key: key, Node: n.name, Task: resp.GetTask(), Existing: resp.GetExisting()}, nil
		}
		if answered(err) {
			return nil, fmt.Errorf("node %s: %w", n.name, FromError(err))
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("key %q is bound to node %s, which has not answered (%v): %w", key, n.name, describe(err), ErrOutcomeUnknown)
		}
		b.wait(ctx)
	}
}

// attempt makes one SubmitTask call to n, bounded by the attempt timeout.
// sent is false when the call failed before any request went out (no
// transport stream was created), so the node cannot have the task.
func (p *Pool) attempt(ctx context.Context, n *poolNode, req *pcnodev1.SubmitTaskRequest) (resp *pcnodev1.SubmitTaskResponse, sent bool, err error) {
	actx, cancel := context.WithTimeout(ctx, p.opts.attempt)
	defer cancel()
	var pr peer.Peer
	resp, err = n.client.Tasks.SubmitTask(actx, req, grpc.Peer(&pr))
	return resp, pr.Addr != nil, err
}

// answered reports whether err is the node's own answer, one that says the
// request was handled (so the outcome is known), rather than a broken
// connection, a timeout or a cancellation.
func answered(err error) bool {
	switch Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Unknown, codes.Internal, codes.Aborted:
		return false
	}
	return true
}

// viewsExcept is views without the nodes in skip.
func (p *Pool) viewsExcept(skip map[string]string) []nodeView {
	var out []nodeView
	for _, v := range p.views() {
		if _, ok := skip[v.Name]; !ok {
			out = append(out, v)
		}
	}
	return out
}

// entry returns the key's placement record, made on first use.
func (p *Pool) entry(key string) *placement {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl := p.keys[key]
	if pl == nil {
		pl = &placement{}
		p.keys[key] = pl
	}
	return pl
}

// Placed returns the node and task id of a placed key; ok is false when
// the pool has not bound the key to a node. taskID is empty while the
// outcome at the node is unknown.
func (p *Pool) Placed(key string) (node, taskID string, ok bool) {
	p.mu.Lock()
	pl := p.keys[key]
	p.mu.Unlock()
	if pl == nil {
		return "", "", false
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.node, pl.taskID, pl.node != ""
}

// checkKey returns key, or a random one for "", or an error for a key
// pcnoded refuses.
func checkKey(key string) (string, error) {
	if key == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		return "pool-" + hex.EncodeToString(b[:]), nil
	}
	if len(key) > maxKeyBytes {
		return "", fmt.Errorf("idempotency key: %d bytes, at most %d", len(key), maxKeyBytes)
	}
	return key, nil
}

// demandFor is what spec asks of a node: its own requests, or when it sets
// neither CPU nor memory, the resolved template's (from the first reachable
// node that resolves it; the spec's own when none can).
func (p *Pool) demandFor(ctx context.Context, spec *pcnodev1.TaskSpec) (demand, error) {
	d := demandOf(spec.GetResources())
	if d.MilliCPU != 0 || d.MemoryBytes != 0 {
		return d, nil
	}
	if t := spec.GetInlineTemplate(); t != nil {
		return mergeDemand(demandOf(t.GetResources()), spec.GetResources()), nil
	}
	for _, v := range p.views() {
		if !v.Reachable {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, p.opts.attempt)
		resp, err := p.nodes[v.Name].client.Tasks.ResolveTask(actx, &pcnodev1.ResolveTaskRequest{Spec: spec})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return d, ctx.Err()
			}
			continue
		}
		if inst := resp.GetInstance(); inst != nil {
			return mergeDemand(demandOf(inst.GetResources()), spec.GetResources()), nil
		}
	}
	return d, nil
}

// mergeDemand is the template's demand t with the spec's GPU count and
// selector where the spec sets them.
func mergeDemand(t demand, r *pcnodev1.ResourceRequirements) demand {
	s := demandOf(r)
	if s.GPUs > 0 {
		t.GPUs = s.GPUs
	}
	if r.GetGpuSelector() != nil {
		t.GPUMinMemoryBytes, t.GPUModel = s.GPUMinMemoryBytes, s.GPUModel
	}
	return t
}

// Wait follows the task placed under key on its node until it has
// finished and returns it. It survives the node's restarts: a dropped
// stream or an unreachable node is retried with backoff until the node
// answers again or ctx ends. When the submission's outcome is still
// unknown, Wait first resubmits the key to its node (see Submit).
//
// Each Wait holds one RunTask stream on the node. Beyond the node's stream
// cap per client ([streams] max_per_client) it looks with GetTask between
// retries of the stream instead, at the backoff's pace.
func (p *Pool) Wait(ctx context.Context, key string) (*pcnodev1.Task, error) {
	return p.follow(ctx, key, nil)
}

// Run submits spec (as Submit) and follows the task to its end (as Wait),
// calling fn, when set, for every event the node sends; after a reconnect
// the node starts again with the task's current state. An error from fn
// stops Run and is returned.
func (p *Pool) Run(ctx context.Context, spec *pcnodev1.TaskSpec, idempotencyKey string, fn func(node string, ev *pcnodev1.TaskEvent) error) (*Placement, *pcnodev1.Task, error) {
	pl, err := p.Submit(ctx, spec, idempotencyKey)
	if err != nil {
		return nil, nil, err
	}
	task, err := p.follow(ctx, pl.Key, fn)
	return pl, task, err
}

func (p *Pool) follow(ctx context.Context, key string, fn func(string, *pcnodev1.TaskEvent) error) (*pcnodev1.Task, error) {
	p.mu.Lock()
	pl := p.keys[key]
	p.mu.Unlock()
	if pl == nil {
		return nil, fmt.Errorf("%q: %w", key, ErrUnknownKey)
	}
	pl.mu.Lock()
	node, id, spec := pl.node, pl.taskID, pl.spec
	pl.mu.Unlock()
	if node == "" {
		return nil, fmt.Errorf("%q: %w", key, ErrUnknownKey)
	}
	if id == "" {
		if spec == nil {
			return nil, fmt.Errorf("key %q is bound to node %s (WithBindings) and this pool has not submitted it: Submit it again (it goes to that node) before waiting", key, node)
		}
		got, err := p.Submit(ctx, proto.Clone(spec).(*pcnodev1.TaskSpec), key)
		if err != nil {
			return nil, err
		}
		id = got.Task.GetId()
	}
	n := p.nodes[node]
	b := p.backoff()
	var last *pcnodev1.Task
	for {
		task, err := followOnce(ctx, n, id, fn)
		if task != nil {
			last = task
			b.reset()
		}
		if err == nil {
			return last, nil
		}
		var stop stopError
		if errors.As(err, &stop) {
			return last, stop.err
		}
		if Code(err) == codes.ResourceExhausted {
			// Over the node's stream cap ([streams] max_per_client): look
			// with GetTask meanwhile, and try the stream again later.
			actx, cancel := context.WithTimeout(ctx, p.opts.attempt)
			resp, gerr := n.client.Tasks.GetTask(actx, &pcnodev1.GetTaskRequest{TaskId: id})
			cancel()
			if gerr == nil {
				last = resp.GetTask()
				if isFinal(last.GetState()) {
					return last, nil
				}
			}
			err = gerr
			if err == nil {
				err = errStreamEnded
			}
		}
		if answered(err) {
			return last, fmt.Errorf("node %s: task %s: %w", node, id, FromError(err))
		}
		if ctx.Err() != nil {
			return last, fmt.Errorf("node %s: task %s: %w", node, id, ctx.Err())
		}
		b.wait(ctx)
	}
}

// stopError carries an error returned by the caller's callback.
type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }

// followOnce attaches to the task with RunTask and reads until the final
// state (nil error), the caller stops (stopError) or the stream breaks.
// It returns the last task state seen.
func followOnce(ctx context.Context, n *poolNode, id string, fn func(string, *pcnodev1.TaskEvent) error) (*pcnodev1.Task, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := n.client.Tasks.RunTask(ctx, &pcnodev1.RunTaskRequest{Target: &pcnodev1.RunTaskRequest_TaskId{TaskId: id}})
	if err != nil {
		return nil, err
	}
	var last *pcnodev1.Task
	for {
		resp, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) && last != nil && isFinal(last.GetState()) {
				return last, nil
			}
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w: stream ended before the task finished", errStreamEnded)
			}
			return last, err
		}
		ev := resp.GetEvent()
		if t := ev.GetStateChange(); t != nil {
			last = t
		}
		if fn != nil {
			if err := fn(n.name, ev); err != nil {
				return last, stopError{err}
			}
		}
		if last != nil && isFinal(last.GetState()) {
			return last, nil
		}
	}
}

// errStreamEnded is a follow stream that ended without the final state;
// the follow is resumed.
var errStreamEnded = errors.New("stream ended")
