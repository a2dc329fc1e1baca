package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// NodeConfig names one node of a Pool and how to reach it.
type NodeConfig struct {
	// Name identifies the node in the pool (placements, reasons); unique.
	Name string
	// Address is what Dial takes.
	Address string
	// Options are passed to Dial (CA, client certificate, server name,
	// keepalive, …).
	Options []Option
}

// PoolOption changes how NewPool builds a Pool.
type PoolOption func(*poolOptions)

type poolOptions struct {
	bindings     map[string]string
	heartbeat    time.Duration
	attempt      time.Duration
	backoffMin   time.Duration
	backoffMax   time.Duration
	pendingSlack time.Duration
}

// Defaults of the pool's options.
const (
	// DefaultPoolHeartbeat is the WatchNode heartbeat the pool asks for.
	DefaultPoolHeartbeat = 5 * time.Second
	// DefaultPoolAttemptTimeout bounds one SubmitTask call to one node.
	DefaultPoolAttemptTimeout = 15 * time.Second
	// DefaultPoolBackoff and DefaultPoolMaxBackoff bound the wait between
	// reconnects of a node's watch and between retries to one node.
	DefaultPoolBackoff    = 100 * time.Millisecond
	DefaultPoolMaxBackoff = 5 * time.Second
)

// WithHeartbeat sets the WatchNode heartbeat interval (at least 1s). A node
// whose stream stays silent for three intervals counts as unreachable.
func WithHeartbeat(d time.Duration) PoolOption {
	return func(o *poolOptions) { o.heartbeat = max(d, time.Second) }
}

// WithBindings restores idempotency keys bound to nodes (key → node name)
// by an earlier Pool, e.g. from what a scheduler recorded of Placed before
// it restarted: each such key is only ever submitted to its node again.
// NewPool fails for a node name it does not have.
func WithBindings(keyToNode map[string]string) PoolOption {
	return func(o *poolOptions) {
		o.bindings = make(map[string]string, len(keyToNode))
		for k, n := range keyToNode {
			o.bindings[k] = n
		}
	}
}

// WithAttemptTimeout bounds each SubmitTask call to one node.
func WithAttemptTimeout(d time.Duration) PoolOption {
	return func(o *poolOptions) {
		if d > 0 {
			o.attempt = d
		}
	}
}

// WithBackoff sets the first and the longest wait between reconnects and
// retries (doubling, with jitter).
func WithBackoff(first, longest time.Duration) PoolOption {
	return func(o *poolOptions) {
		if first > 0 {
			o.backoffMin = first
		}
		if longest >= o.backoffMin {
			o.backoffMax = longest
		}
	}
}

// Pool places tasks on many pcnoded nodes. It keeps one WatchNode stream
// per node (reconnected with backoff) and so knows each node's allocatable
// and allocated resources, GPUs, draining state and reachability; see
// Submit for how it places and fails over. A Pool is safe for concurrent
// use. Close it when done.
type Pool struct {
	opts   poolOptions
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	order  []string // node names in configuration order
	nodes  map[string]*poolNode

	mu   sync.Mutex // guards keys
	keys map[string]*placement
}

// poolNode is one node of the pool and what its watch last said.
type poolNode struct {
	name   string
	client *Client

	mu          sync.Mutex
	node        *pcnodev1.Node
	nodeTime    time.Time // the node's clock of the last report
	reachable   bool
	unreachable string // why, while not reachable
	pending     map[string]*reservation
}

// reservation is a task the pool placed on a node that the node's reports
// may not count yet.
type reservation struct {
	demand demand
	// created is the task's create_time by the node's clock; zero until
	// the node has answered.
	created time.Time
}

// NewPool dials every node and starts watching it. Dialling is lazy (see
// Dial): an unreachable node is not an error here; it is left out of
// placement until its watch connects. It fails for an empty or duplicate
// name or an address Dial refuses; ctx bounds nothing after NewPool
// returns (Close ends the watches).
func NewPool(ctx context.Context, nodes []NodeConfig, opts ...PoolOption) (*Pool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := poolOptions{
		heartbeat:    DefaultPoolHeartbeat,
		attempt:      DefaultPoolAttemptTimeout,
		backoffMin:   DefaultPoolBackoff,
		backoffMax:   DefaultPoolMaxBackoff,
		pendingSlack: 500 * time.Millisecond,
	}
	for _, opt := range opts {
		opt(&o)
	}
	p := &Pool{opts: o, nodes: map[string]*poolNode{}, keys: map[string]*placement{}}
	for i, nc := range nodes {
		if nc.Name == "" || strings.TrimSpace(nc.Name) != nc.Name {
			p.closeClients()
			return nil, fmt.Errorf("nodes[%d].name: %q: must be non-empty without surrounding space", i, nc.Name)
		}
		if _, dup := p.nodes[nc.Name]; dup {
			p.closeClients()
			return nil, fmt.Errorf("nodes[%d].name: %q: named twice", i, nc.Name)
		}
		c, err := Dial(nc.Address, nc.Options...)
		if err != nil {
			p.closeClients()
			return nil, fmt.Errorf("nodes[%d] (%s): %w", i, nc.Name, err)
		}
		p.nodes[nc.Name] = &poolNode{name: nc.Name, client: c, unreachable: "not connected yet", pending: map[string]*reservation{}}
		p.order = append(p.order, nc.Name)
	}
	for k, n := range o.bindings {
		if _, ok := p.nodes[n]; !ok || k == "" || len(k) > maxKeyBytes {
			p.closeClients()
			return nil, fmt.Errorf("bindings[%q]: %q: want a key of 1 to %d bytes bound to a node of the pool", k, n, maxKeyBytes)
		}
		p.keys[k] = &placement{node: n}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for _, name := range p.order {
		n := p.nodes[name]
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.watch(n)
		}()
	}
	return p, nil
}

func (p *Pool) closeClients() {
	for _, n := range p.nodes {
		n.client.Close()
	}
}

// Close stops the watches and closes every connection. Calls in progress
// end with an error.
func (p *Pool) Close() error {
	p.cancel()
	p.wg.Wait()
	var errs []error
	for _, name := range p.order {
		if err := p.nodes[name].client.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// NodeStatus is what the pool knows of one node.
type NodeStatus struct {
	Name string
	// Reachable is whether the node's watch is connected; Unreachable
	// says why not.
	Reachable   bool
	Unreachable string
	// Node is the node's last report (nil before the first); it stays
	// while the node is unreachable.
	Node *pcnodev1.Node
	// PendingTasks counts tasks the pool placed that the report may not
	// count yet.
	PendingTasks int
}

// Nodes returns every node's status, in configuration order.
func (p *Pool) Nodes() []NodeStatus {
	var out []NodeStatus
	for _, v := range p.views() {
		out = append(out, NodeStatus{Name: v.Name, Reachable: v.Reachable, Unreachable: v.Unreachable, Node: v.Node, PendingTasks: v.PendingTasks})
	}
	return out
}

// WaitReady waits until every node has reported at least once, or ctx ends.
func (p *Pool) WaitReady(ctx context.Context) error {
	for {
		var missing []string
		for _, v := range p.views() {
			if v.Node == nil || !v.Reachable {
				missing = append(missing, v.Name+" ("+v.Unreachable+")")
			}
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes not reachable: %s: %w", strings.Join(missing, ", "), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// views snapshots every node for placement.
func (p *Pool) views() []nodeView {
	out := make([]nodeView, 0, len(p.order))
	for _, name := range p.order {
		out = append(out, p.nodes[name].view())
	}
	return out
}

func (n *poolNode) view() nodeView {
	n.mu.Lock()
	defer n.mu.Unlock()
	v := nodeView{Name: n.name, Reachable: n.reachable, Unreachable: n.unreachable, Node: n.node, PendingTasks: len(n.pending)}
	for _, r := range n.pending {
		v.Pending.MilliCPU += r.demand.MilliCPU
		v.Pending.MemoryBytes += r.demand.MemoryBytes
		v.Pending.GPUs += r.demand.GPUs
	}
	return v
}

// reserve counts d against the node until its reports include the task.
func (n *poolNode) reserve(key string, d demand) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pending[key] = &reservation{demand: d}
}

// accepted records when the node created the task; the reservation ends
// with the first report taken clearly after that.
func (n *poolNode) accepted(key string, created time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r := n.pending[key]; r != nil {
		r.created = created
	}
}

// release drops the reservation (the node refused the task, or it is
// known to the node's reports).
func (n *poolNode) release(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.pending, key)
}

// report stores a node report and ends reservations it covers: a task the
// node created (by its own clock) at least slack before the report is in
// the report's allocated resources or queue, or has already finished.
func (n *poolNode) report(node *pcnodev1.Node, at time.Time, slack time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.node, n.nodeTime, n.reachable, n.unreachable = node, at, true, ""
	for k, r := range n.pending {
		if !r.created.IsZero() && at.Sub(r.created) >= slack {
			delete(n.pending, k)
		}
	}
}

func (n *poolNode) down(why string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reachable, n.unreachable = false, why
}

// watch follows the node's WatchNode stream until the pool closes,
// reconnecting with backoff. A stream silent for three heartbeats is
// dropped and the node counted unreachable meanwhile.
func (p *Pool) watch(n *poolNode) {
	b := p.backoff()
	for p.ctx.Err() == nil {
		err := p.watchOnce(n, b)
		if p.ctx.Err() != nil {
			return
		}
		n.down(describe(err))
		b.wait(p.ctx)
	}
}

func (p *Pool) watchOnce(n *poolNode, b *backoff) error {
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	stream, err := n.client.Nodes.WatchNode(ctx, &pcnodev1.WatchNodeRequest{HeartbeatInterval: durationpb.New(p.opts.heartbeat)})
	if err != nil {
		return err
	}
	silent := time.AfterFunc(3*p.opts.heartbeat, cancel)
	defer silent.Stop()
	for {
		resp, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil && p.ctx.Err() == nil {
				return fmt.Errorf("no message for %v (3 heartbeats)", 3*p.opts.heartbeat)
			}
			return err
		}
		silent.Reset(3 * p.opts.heartbeat)
		b.reset()
		at := time.Now()
		if t := resp.GetTime(); t != nil {
			at = t.AsTime()
		}
		n.report(proto.Clone(resp.GetNode()).(*pcnodev1.Node), at, p.opts.pendingSlack)
	}
}

// describe is a short reason from a connection error.
func describe(err error) string {
	if err == nil {
		return "stream ended"
	}
	return FromError(err).Error()
}

// backoff is the pool's reconnect and retry backoff.
func (p *Pool) backoff() *backoff {
	return &backoff{min: p.opts.backoffMin, max: p.opts.backoffMax}
}
