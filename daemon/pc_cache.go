package daemon

import (
	"context"
	"sync"

	"github.com/pcnode/pcnode/daemon/spec"
)

// maxCachedPCs bounds pcCache: an entry holds at most one parsed
// processing-container.json (spec.MaxFileSize of JSON), so the cache holds
// at most maxCachedPCs of them. A node rarely has more images than this; one
// evicted is read from its image again when next asked for.
const maxCachedPCs = 512

// pcCache holds what each image's /processing-container.json said, by
// image digest: the parsed file and its warnings, or why it is unusable
// (missing, not a regular file, too large, invalid). An image's digest
// names its content, so an entry never goes stale. It holds at most
// maxCachedPCs entries, evicting an arbitrary one to make room.
//
// Callers that miss on the same digest at the same time share one read
// (load): a fan-out of many tasks of a new image scans its layers once, not
// once per submit. Its zero value is ready to use.
type pcCache struct {
	mu      sync.Mutex
	m       map[string]*cachedPC // by image digest
	loading map[string]*pcLoad   // reads in flight, by the digest asked for
}

type cachedPC struct {
	pc       *spec.ProcessingContainer
	warnings []spec.Warning
	err      error
}

// pcLoad is one read in flight; done is closed once c, digest and err are
// set.
type pcLoad struct {
	done   chan struct{}
	c      *cachedPC
	digest string
	err    error
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
	c.putLocked(digest, pc)
}

func (c *pcCache) putLocked(digest string, pc *cachedPC) {
	if c.m == nil {
		c.m = map[string]*cachedPC{}
	}
	if _, ok := c.m[digest]; !ok && len(c.m) >= maxCachedPCs {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[digest] = pc
}

// load returns the entry for digest, from the cache or from read, which
// returns the entry and the digest it was read at (the image's content may
// have been replaced under its name since digest was looked up). Concurrent
// loads of the same digest run read once and share its result. read runs
// detached from ctx, so one caller going away does not fail the others; a
// caller stops waiting when its own ctx ends. An entry read without error
// is cached under the digest read returned; an error (a transient failure
// to read the image) is returned to every waiter and not cached.
func (c *pcCache) load(ctx context.Context, digest string, read func(context.Context) (*cachedPC, string, error)) (*cachedPC, string, error) {
	c.mu.Lock()
	if e, ok := c.m[digest]; ok {
		c.mu.Unlock()
		return e, digest, nil
	}
	l, ok := c.loading[digest]
	if !ok {
		l = &pcLoad{done: make(chan struct{})}
		if c.loading == nil {
			c.loading = map[string]*pcLoad{}
		}
		c.loading[digest] = l
		go c.run(context.WithoutCancel(ctx), digest, l, read)
	}
	c.mu.Unlock()
	select {
	case <-l.done:
		return l.c, l.digest, l.err
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
}

func (c *pcCache) run(ctx context.Context, digest string, l *pcLoad, read func(context.Context) (*cachedPC, string, error)) {
	ctx, cancel := context.WithTimeout(ctx, pcReadTimeout)
	defer cancel()
	e, got, err := read(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.loading, digest)
	l.c, l.digest, l.err = e, got, err
	if err == nil {
		c.putLocked(got, e)
	}
	close(l.done)
}
