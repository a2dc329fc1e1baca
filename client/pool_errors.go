package client

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrNoNodeFits is returned (inside a *NoFitError) by Pool.Submit and
// Pool.Run when no node of the pool can take the task: each node is
// unreachable, draining, too small for it, or refused it.
var ErrNoNodeFits = errors.New("no node can take the task")

// ErrUnknownKey is returned by Pool.Wait for an idempotency key the pool has
// not placed.
var ErrUnknownKey = errors.New("idempotency key not placed by this pool")

// ErrOutcomeUnknown is returned (wrapped, with the node and the cause) when
// a submission reached a node and the caller's context ended before the
// node answered: the task may exist there. The key stays bound to that node;
// submitting it again retries there, never elsewhere.
var ErrOutcomeUnknown = errors.New("submission outcome unknown")

// NodeReason is why one node did not take a task.
type NodeReason struct {
	Node   string
	Reason string
}

// NoFitError lists, node by node, why no node took a task. errors.Is(err,
// ErrNoNodeFits) holds for it.
type NoFitError struct {
	// Reasons, sorted by node name.
	Reasons []NodeReason
}

func newNoFitError(reasons map[string]string) *NoFitError {
	e := &NoFitError{}
	for n, r := range reasons {
		e.Reasons = append(e.Reasons, NodeReason{Node: n, Reason: r})
	}
	slices.SortFunc(e.Reasons, func(a, b NodeReason) int { return strings.Compare(a.Node, b.Node) })
	return e
}

func (e *NoFitError) Error() string {
	var b strings.Builder
	b.WriteString(ErrNoNodeFits.Error())
	if len(e.Reasons) == 0 {
		b.WriteString(": the pool has no nodes")
	}
	for _, r := range e.Reasons {
		fmt.Fprintf(&b, "\n  %s: %s", r.Node, r.Reason)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNoNodeFits) true.
func (e *NoFitError) Is(target error) bool { return target == ErrNoNodeFits }
