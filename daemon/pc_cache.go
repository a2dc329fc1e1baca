package daemon

import (
	"sync"

	"github.com/pcnode/pcnode/daemon/spec"
)

// pcCache holds what each image's /processing-container.json said, by
// image digest: the parsed file and its warnings, or why it is unusable
// (missing, not a regular file, too large, invalid). An image's digest
// names its content, so an entry never goes stale. Its zero value is ready
// to use.
type pcCache struct {
	mu sync.Mutex
	m  map[string]*cachedPC // by image digest
}

type cachedPC struct {
	pc       *spec.ProcessingContainer
	warnings []spec.Warning
	err      error
}

// get returns the entry for digest, if there is one.
func (c *pcCache) get(digest string) (*cachedPC, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pc, ok := c.m[digest]
	return pc, ok
}

// put records the entry for digest.
func (c *pcCache) put(digest string, pc *cachedPC) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*cachedPC{}
	}
	c.m[digest] = pc
}
