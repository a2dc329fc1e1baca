package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPCCache(t *testing.T) {
	var c pcCache // the zero value is ready
	if got, ok := c.get("sha256:a"); ok || got != nil {
		t.Errorf("get(sha256:a) of an empty cache = %v, %v, want nil, false", got, ok)
	}
	a := &cachedPC{err: errors.New("no file")}
	c.put("sha256:a", a)
	if got, ok := c.get("sha256:a"); !ok || got != a {
		t.Errorf("get(sha256:a) = %v, %v, want %v, true", got, ok, a)
	}
	if _, ok := c.get("sha256:b"); ok {
		t.Error("get(sha256:b) found an entry never put")
	}
}

func TestPCCacheBounded(t *testing.T) {
	var c pcCache
	for i := range maxCachedPCs + 50 {
		c.put(fmt.Sprintf("sha256:%d", i), &cachedPC{})
	}
	if n := len(c.m); n != maxCachedPCs {
		t.Errorf("%d entries after %d puts, want the bound %d", n, maxCachedPCs+50, maxCachedPCs)
	}
	last := fmt.Sprintf("sha256:%d", maxCachedPCs+49)
	if _, ok := c.get(last); !ok {
		t.Errorf("the entry put last (%s) was evicted", last)
	}
	// Putting an entry again does not evict another.
	c.put(last, &cachedPC{})
	if n := len(c.m); n != maxCachedPCs {
		t.Errorf("%d entries after a re-put, want %d", n, maxCachedPCs)
	}
}

// TestPCCacheLoadShared checks that concurrent misses on one digest run one
// read and all get its result, which is then cached under the digest the
// read returned.
func TestPCCacheLoadShared(t *testing.T) {
	var c pcCache
	var reads atomic.Int32
	release := make(chan struct{})
	want := &cachedPC{}
	read := func(context.Context) (*cachedPC, string, error) {
		reads.Add(1)
		<-release
		return want, "sha256:new", nil
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, digest, err := c.load(context.Background(), "sha256:old", read)
			if err != nil || got != want || digest != "sha256:new" {
				errs <- fmt.Errorf("load = %p, %q, %v; want %p, sha256:new, nil", got, digest, err, want)
			}
		}()
	}
	// Every caller is waiting on the one read before it is let go.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c.mu.Lock()
		l := c.loading["sha256:old"]
		c.mu.Unlock()
		if l != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if r := reads.Load(); r != 1 {
		t.Errorf("%d reads for %d concurrent loads, want 1", r, n)
	}
	if got, ok := c.get("sha256:new"); !ok || got != want {
		t.Errorf("get(sha256:new) = %v, %v, want the entry read", got, ok)
	}
	// A later load of the new digest is a hit.
	if _, _, err := c.load(context.Background(), "sha256:new", func(context.Context) (*cachedPC, string, error) {
		t.Error("read on a cached digest")
		return nil, "", nil
	}); err != nil {
		t.Error(err)
	}
	if len(c.loading) != 0 {
		t.Errorf("loads left in flight: %v", c.loading)
	}
}

// TestPCCacheLoadErrorNotCached checks that a read's error reaches the
// caller and is not cached: the next load reads again.
func TestPCCacheLoadErrorNotCached(t *testing.T) {
	var c pcCache
	boom := errors.New("containerd went away")
	var reads int
	read := func(context.Context) (*cachedPC, string, error) {
		reads++
		if reads == 1 {
			return nil, "", boom
		}
		return &cachedPC{}, "sha256:a", nil
	}
	if _, _, err := c.load(context.Background(), "sha256:a", read); !errors.Is(err, boom) {
		t.Errorf("first load error = %v, want %v", err, boom)
	}
	if _, ok := c.get("sha256:a"); ok {
		t.Error("a failed read was cached")
	}
	if _, _, err := c.load(context.Background(), "sha256:a", read); err != nil || reads != 2 {
		t.Errorf("second load = %v after %d reads, want nil after 2", err, reads)
	}
}

// TestPCCacheLoadCallerGone checks that a caller whose context ends stops
// waiting, while the read goes on (detached from it) for the others.
func TestPCCacheLoadCallerGone(t *testing.T) {
	var c pcCache
	release := make(chan struct{})
	var readCtxErr atomic.Value
	read := func(ctx context.Context) (*cachedPC, string, error) {
		<-release
		readCtxErr.Store(fmt.Sprint(ctx.Err()))
		return &cachedPC{}, "sha256:a", nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := c.load(ctx, "sha256:a", read)
		done <- err
	}()
	other := make(chan error, 1)
	time.Sleep(10 * time.Millisecond)
	go func() {
		_, _, err := c.load(context.Background(), "sha256:a", read)
		other <- err
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("load of the cancelled caller = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-other; err != nil {
		t.Errorf("load of the other caller = %v, want nil", err)
	}
	if got := readCtxErr.Load(); got != "<nil>" {
		t.Errorf("the read's context ended (%v) with its first caller", got)
	}
}
