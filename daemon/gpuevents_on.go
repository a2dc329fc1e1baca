//go:build crashpoints

package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pcnode/pcnode/gpu"
	"github.com/pcnode/pcnode/gpu/health"
)

// testGPUSource wraps src so that it also emits the events written into
// the directory named by PCNODE_TEST_GPU_EVENTS (gpuevents.go), or returns
// src when the variable is unset.
func testGPUSource(src health.Source) health.Source {
	dir := os.Getenv(EnvTestGPUEvents)
	if dir == "" {
		return src
	}
	return injectedEvents{Source: src, dir: dir}
}

type injectedEvents struct {
	health.Source
	dir string
}

// Watch runs the wrapped source's Watch and, once it has started, polls
// the directory every 50 ms, emitting each event file's event.
func (s injectedEvents) Watch(ctx context.Context, uuids []string, started func(map[string]error), emit func(gpu.Event)) error {
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- s.Source.Watch(ctx, uuids, func(unwatched map[string]error) {
			started(unwatched)
			close(ready)
		}, emit)
	}()
	select {
	case <-ready:
	case err := <-errc:
		return err
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			return err
		case <-tick.C:
			files, _ := filepath.Glob(filepath.Join(s.dir, "*.event"))
			for _, f := range files {
				ev, err := readInjectedEvent(f)
				os.Remove(f)
				if err != nil {
					fmt.Fprintf(os.Stderr, "pcnoded: %s: %v\n", f, err)
					continue
				}
				emit(ev)
			}
		}
	}
}

func readInjectedEvent(path string) (gpu.Event, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return gpu.Event{}, err
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return gpu.Event{}, fmt.Errorf("want \"<uuid> <xid> <unix ms>\", got %q", b)
	}
	xid, err := strconv.Atoi(f[1])
	if err != nil {
		return gpu.Event{}, fmt.Errorf("xid: %w", err)
	}
	ms, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return gpu.Event{}, fmt.Errorf("time: %w", err)
	}
	return gpu.Event{UUID: f[0], Kind: gpu.EventXID, XID: xid, Time: time.UnixMilli(ms)}, nil
}
