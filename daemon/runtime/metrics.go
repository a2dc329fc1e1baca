package runtime

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	cgroup1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	cgroup2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	apievents "github.com/containerd/containerd/api/events"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
)

// Usage is what a container's task has used, from its cgroup.
type Usage struct {
	// PeakMemoryBytes is the highest memory use seen (cgroup v1
	// memory.max_usage_in_bytes, cgroup v2 memory.peak; the current use
	// where the kernel keeps no peak).
	PeakMemoryBytes uint64
	// CPUTime is the CPU time used, user and system.
	CPUTime time.Duration
}

// Usage reads id's resource use from its cgroup. It works while the task
// runs and after it exited, until Delete.
func (c *Containerd) Usage(ctx context.Context, id string) (_ Usage, retErr error) {
	defer c.markUnavailable(&retErr)
	ctx = c.ns(ctx)
	m, err := c.taskMetrics(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Usage{}, err
		}
		return Usage{}, fmt.Errorf("metrics of %s: %w", id, err)
	}
	return usageOf(m), nil
}

// taskMetrics returns id's task's cgroup statistics: *cgroup1stats.Metrics
// or *cgroup2stats.Metrics; ErrNotFound when there is no task.
func (c *Containerd) taskMetrics(ctx context.Context, id string) (any, error) {
	resp, err := c.client.TaskService().Metrics(ctx, &tasks.MetricsRequest{Filters: []string{"id==" + id}})
	if err != nil {
		return nil, errgrpc.ToNative(err)
	}
	if len(resp.GetMetrics()) == 0 {
		return nil, fmt.Errorf("task of container %s: %w", id, ErrNotFound)
	}
	m := resp.GetMetrics()[0]
	if m.Data == nil {
		return nil, fmt.Errorf("no metrics data")
	}
	v, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return nil, fmt.Errorf("decode metrics: %w", err)
	}
	switch v.(type) {
	case *cgroup1stats.Metrics, *cgroup2stats.Metrics:
		return v, nil
	}
	return nil, fmt.Errorf("unknown metrics type %T", v)
}

func usageOf(m any) Usage {
	var u Usage
	switch m := m.(type) {
	case *cgroup1stats.Metrics:
		if mem := m.GetMemory(); mem != nil {
			u.PeakMemoryBytes = mem.GetUsage().GetMax()
			if u.PeakMemoryBytes == 0 {
				u.PeakMemoryBytes = mem.GetUsage().GetUsage()
			}
		}
		u.CPUTime = time.Duration(m.GetCPU().GetUsage().GetTotal())
	case *cgroup2stats.Metrics:
		if mem := m.GetMemory(); mem != nil {
			u.PeakMemoryBytes = mem.GetMaxUsage()
			if u.PeakMemoryBytes == 0 {
				u.PeakMemoryBytes = mem.GetUsage()
			}
		}
		u.CPUTime = time.Duration(m.GetCPU().GetUsageUsec()) * time.Microsecond
	}
	return u
}

// oomKillsOf returns the OOM kill count in m, and whether m has one.
func oomKillsOf(m any) (uint64, bool) {
	switch m := m.(type) {
	case *cgroup1stats.Metrics:
		if oc := m.GetMemoryOomControl(); oc != nil {
			return oc.GetOomKill(), true
		}
	case *cgroup2stats.Metrics:
		if ev := m.GetMemoryEvents(); ev != nil {
			return ev.GetOomKill(), true
		}
	}
	return 0, false
}

// oomKilled reports whether the kernel OOM-killed a process in the
// container, from the task's cgroup statistics, or, where the shim does
// not report the counter, from the cgroup's files. The task must not be
// deleted yet.
func (c *Containerd) oomKilled(ctx context.Context, id string) (bool, error) {
	m, err := c.taskMetrics(ctx, id)
	return c.oomKilledFrom(ctx, id, m, err)
}

// oomKilledFrom is oomKilled with the task's metrics (or the error reading
// them) already read.
func (c *Containerd) oomKilledFrom(ctx context.Context, id string, m any, err error) (bool, error) {
	if err == nil {
		if n, ok := oomKillsOf(m); ok {
			c.log.DebugContext(ctx, "OOM kills from task metrics", "task", id, "oom_kills", n)
			return n > 0, nil
		}
	}
	spec, serr := c.containerSpec(ctx, id)
	if serr != nil {
		return false, fmt.Errorf("spec: %w (metrics: %v)", serr, err)
	}
	if spec.Linux == nil || spec.Linux.CgroupsPath == "" {
		return false, fmt.Errorf("no cgroup path in spec (metrics: %v)", err)
	}
	n, ferr := cgroupOOMKills("/sys/fs/cgroup", spec.Linux.CgroupsPath)
	if ferr != nil {
		return false, fmt.Errorf("%w (metrics: %v)", ferr, err)
	}
	c.log.DebugContext(ctx, "OOM kills from the cgroup", "task", id, "oom_kills", n, "metrics_error", err)
	return n > 0, nil
}

// containerSpec returns the OCI spec of container id.
func (c *Containerd) containerSpec(ctx context.Context, id string) (*oci.Spec, error) {
	rec, err := c.client.ContainerService().Get(ctx, id)
	if err != nil {
		return nil, notFound(err, ErrNotFound, "container "+id)
	}
	if rec.Spec == nil {
		return nil, fmt.Errorf("container %s has no spec", id)
	}
	var s oci.Spec
	if err := typeurl.UnmarshalTo(rec.Spec, &s); err != nil {
		return nil, fmt.Errorf("spec of container %s: %w", id, err)
	}
	return &s, nil
}

// cgroupOOMKills reads the oom_kill counter of the cgroup at cgroupsPath
// (an OCI cgroupsPath for the cgroupfs driver) under root: memory.events
// on cgroup v2, memory.oom_control on cgroup v1.
func cgroupOOMKills(root, cgroupsPath string) (uint64, error) {
	if !strings.HasPrefix(cgroupsPath, "/") {
		return 0, fmt.Errorf("cgroup path %q is not a cgroupfs path", cgroupsPath)
	}
	rel := filepath.Clean(cgroupsPath)
	file := filepath.Join(root, rel, "memory.events")
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		file = filepath.Join(root, "memory", rel, "memory.oom_control")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return parseOOMKill(b)
}

// parseOOMKill finds "oom_kill N" in memory.oom_control or memory.events.
func parseOOMKill(b []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == "oom_kill" {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no oom_kill counter")
}

// watchOOM records containerd's /tasks/oom events for container id until
// ctx ends; the function it returns says whether one came.
func (c *Containerd) watchOOM(ctx context.Context, id string) func() bool {
	var seen atomic.Bool
	ch, errs := c.client.Subscribe(ctx, `topic=="/tasks/oom"`)
	go func() {
		for {
			select {
			case env := <-ch:
				if env == nil {
					return
				}
				v, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					continue
				}
				if ev, ok := v.(*apievents.TaskOOM); ok && ev.ContainerID == id {
					seen.Store(true)
				}
			case <-errs:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return seen.Load
}
