package daemon

import "sync"

// channelTable holds the opened host directories (taskChannels) of every
// preparing and running task, by task id: what a new task's outputs are
// checked against (claimChannels) and what its steps mount and hash. Its
// zero value is ready to use.
type channelTable struct {
	mu sync.Mutex
	m  map[string]*taskChannels
}

// claim calls check with every registered task's channels, under the
// lock, and registers c when check passes: no other claim or registration
// comes between the check and the registration.
func (t *channelTable) claim(c *taskChannels, check func(registered map[string]*taskChannels) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := check(t.m); err != nil {
		return err
	}
	t.addLocked(c)
	return nil
}

// register records c without checks.
func (t *channelTable) register(c *taskChannels) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.addLocked(c)
}

func (t *channelTable) addLocked(c *taskChannels) {
	if t.m == nil {
		t.m = map[string]*taskChannels{}
	}
	t.m[c.task] = c
}

// get returns task id's channels, or nil.
func (t *channelTable) get(id string) *taskChannels {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

// remove forgets task id's channels and returns them (nil: none).
func (t *channelTable) remove(id string) *taskChannels {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.m[id]
	delete(t.m, id)
	return c
}
