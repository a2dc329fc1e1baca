package daemon

import (
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// nodeConditions holds GetNode's conditions, one per NodeConditionType,
// all present from the start (ok, since the daemon's start, until set).
type nodeConditions struct {
	mu sync.Mutex
	m  map[pcnodev1.NodeConditionType]*pcnodev1.NodeCondition
}

// conditionTypes are the condition types, in the order GetNode lists them.
var conditionTypes = []pcnodev1.NodeConditionType{
	pcnodev1.NodeConditionType_NODE_CONDITION_TYPE_CONTAINERD_READY,
	pcnodev1.NodeConditionType_NODE_CONDITION_TYPE_GPUS_KNOWN,
}

func newNodeConditions(start time.Time) *nodeConditions {
	c := &nodeConditions{m: map[pcnodev1.NodeConditionType]*pcnodev1.NodeCondition{}}
	for _, typ := range conditionTypes {
		c.m[typ] = &pcnodev1.NodeCondition{Type: typ, Ok: true, Since: timestamppb.New(start)}
	}
	return c
}

// set sets a condition; since is when ok last changed. It reports whether
// ok or the message changed.
func (c *nodeConditions) set(typ pcnodev1.NodeConditionType, ok bool, message string, since time.Time) bool {
	if ok {
		message = ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m[typ]
	if old != nil && old.GetOk() == ok && old.GetMessage() == message {
		return false
	}
	if old != nil && old.GetOk() == ok {
		since = old.GetSince().AsTime() // only the message changed
	}
	c.m[typ] = &pcnodev1.NodeCondition{Type: typ, Ok: ok, Message: message, Since: timestamppb.New(since)}
	return true
}

// list returns copies of the conditions in conditionTypes order.
func (c *nodeConditions) list() []*pcnodev1.NodeCondition {
	if c == nil { // a Daemon built by a unit test without conditions
		c = newNodeConditions(time.Time{})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*pcnodev1.NodeCondition, 0, len(conditionTypes))
	for _, typ := range conditionTypes {
		if x := c.m[typ]; x != nil {
			out = append(out, &pcnodev1.NodeCondition{Type: x.GetType(), Ok: x.GetOk(), Message: x.GetMessage(), Since: x.GetSince()})
		}
	}
	return out
}

// containerdMessage is the CONTAINERD_READY condition's message for the
// error that found containerd unreachable ("" for none).
func containerdMessage(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
