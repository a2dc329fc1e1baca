package daemon

import (
	"sync"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// nodeWatch tells WatchNode streams that something changed. Changes are
// coalesced: a watcher learns the latest reason and reads the node afresh.
type nodeWatch struct {
	mu   sync.Mutex
	subs map[chan pcnodev1.NodeChange]struct{}
}

func newNodeWatch() *nodeWatch { return &nodeWatch{subs: map[chan pcnodev1.NodeChange]struct{}{}} }

func (w *nodeWatch) subscribe() chan pcnodev1.NodeChange {
	c := make(chan pcnodev1.NodeChange, 1)
	w.mu.Lock()
	w.subs[c] = struct{}{}
	w.mu.Unlock()
	return c
}

func (w *nodeWatch) unsubscribe(c chan pcnodev1.NodeChange) {
	w.mu.Lock()
	delete(w.subs, c)
	w.mu.Unlock()
}

func (w *nodeWatch) changed(why pcnodev1.NodeChange) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.subs {
		select { // keep only the latest reason, but never drop a condition change
		case prev := <-c:
			if prev == pcnodev1.NodeChange_NODE_CHANGE_CONDITION {
				c <- prev // the node is read afresh: the other change shows too
				continue
			}
		default:
		}
		c <- why
	}
}
