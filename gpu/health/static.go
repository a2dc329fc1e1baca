package health

import (
	"context"

	"github.com/pcnode/pcnode/gpu"
)

// StaticSource is the Source for GPUs no driver reports on (the static
// backend): it watches every GPU, delivers no event, and every probe
// succeeds. Failures can still be fed in with Monitor.Report.
type StaticSource struct{}

var _ Source = StaticSource{}

// Watch calls started with no unwatched GPU and waits for ctx.
func (StaticSource) Watch(ctx context.Context, _ []string, started func(map[string]error), _ func(gpu.Event)) error {
	started(nil)
	<-ctx.Done()
	return nil
}

// Probe succeeds unless ctx is done.
func (StaticSource) Probe(ctx context.Context, _ string) error { return ctx.Err() }
