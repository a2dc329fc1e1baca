package client

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// demand is what a task asks of a node, as the pool places it: the
// requests a node's scheduler will reserve, and the GPU selector.
type demand struct {
	MilliCPU    int64
	MemoryBytes int64
	GPUs        int
	// GPUMinMemoryBytes and GPUModel narrow which GPUs count (see
	// pcnodev1.GpuSelector).
	GPUMinMemoryBytes int64
	GPUModel          string
}

// demandOf reads a demand from resource requirements the way pcnoded's
// scheduler does: requests, else limits (a limit without a request reserves
// the limit), GPUs the larger of the two.
func demandOf(r *pcnodev1.ResourceRequirements) demand {
	d := demand{
		MilliCPU:          r.GetRequests().GetCpuMillis(),
		MemoryBytes:       r.GetRequests().GetMemoryBytes(),
		GPUs:              int(max(r.GetRequests().GetGpus(), r.GetLimits().GetGpus())),
		GPUMinMemoryBytes: r.GetGpuSelector().GetMinMemoryBytes(),
		GPUModel:          r.GetGpuSelector().GetModel(),
	}
	if d.MilliCPU == 0 {
		d.MilliCPU = r.GetLimits().GetCpuMillis()
	}
	if d.MemoryBytes == 0 {
		d.MemoryBytes = r.GetLimits().GetMemoryBytes()
	}
	return d
}

// nodeView is one node as placement sees it: the node's last report plus
// the pool's own reservations that the report does not show yet.
type nodeView struct {
	Name string
	// Reachable is false while the node's WatchNode stream is down;
	// Unreachable says why.
	Reachable   bool
	Unreachable string
	// Node is the node's last report (nil before the first).
	Node *pcnodev1.Node
	// Pending is what the pool placed on the node that Node does not
	// count yet; PendingTasks how many tasks that is, PendingGPUs how many
	// GPUs they asked for.
	Pending      demand
	PendingTasks int
}

// candidate is a node that can take the task, with its score.
type candidate struct {
	name string
	now  bool    // fits what is free now
	load float64 // lower is better
	busy int     // tie-break: tasks on the node
}

// rank orders the nodes that can take d, best first, and says for every
// other node why not. A node that fits now (free resources, no queue)
// comes before one that only fits its allocatable resources (the task
// would queue there); among those that fit now the least loaded after
// placement wins (its largest share of CPU, memory and GPUs in use), and
// among those that would queue the one with the shortest queue for its
// size. Ties go to the node with fewer tasks, then by name, so the order
// is deterministic.
func rank(d demand, nodes []nodeView) (order []string, reasons map[string]string) {
	reasons = map[string]string{}
	var cs []candidate
	for _, n := range nodes {
		c, why := judge(d, n)
		if why != "" {
			reasons[n.Name] = why
			continue
		}
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b candidate) int {
		if a.now != b.now {
			if a.now {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.load, b.load), cmp.Compare(a.busy, b.busy), strings.Compare(a.name, b.name))
	})
	for _, c := range cs {
		order = append(order, c.name)
	}
	return order, reasons
}

// judge decides whether node n can take d: a candidate, or why not.
func judge(d demand, n nodeView) (candidate, string) {
	switch {
	case !n.Reachable:
		if n.Unreachable == "" {
			return candidate{}, "unreachable"
		}
		return candidate{}, "unreachable: " + n.Unreachable
	case n.Node == nil:
		return candidate{}, "no report from the node yet"
	case n.Node.GetDraining():
		return candidate{}, "draining: not admitting tasks"
	}
	alloc, used := n.Node.GetAllocatable(), n.Node.GetAllocated()
	var short []string
	if d.MilliCPU > alloc.GetCpuMillis() {
		short = append(short, fmt.Sprintf("cpu: needs %dm, allocatable %dm", d.MilliCPU, alloc.GetCpuMillis()))
	}
	if d.MemoryBytes > alloc.GetMemoryBytes() {
		short = append(short, fmt.Sprintf("memory: needs %d bytes, allocatable %d", d.MemoryBytes, alloc.GetMemoryBytes()))
	}
	matching, free := 0, 0
	if d.GPUs > 0 {
		for _, g := range n.Node.GetGpus() {
			if g.GetHealth() != pcnodev1.GpuHealth_GPU_HEALTH_HEALTHY || !gpuMatches(g, d) {
				continue
			}
			matching++
			if g.GetHolderTaskId() == "" {
				free++
			}
		}
		if matching < d.GPUs {
			short = append(short, fmt.Sprintf("gpus: needs %d%s, node has %d healthy that match", d.GPUs, selectorText(d), matching))
		}
	}
	if len(short) > 0 {
		return candidate{}, strings.Join(short, "; ")
	}

	c := candidate{name: n.Name, busy: int(n.Node.GetRunningTasks()+n.Node.GetQueuedTasks()) + n.PendingTasks}
	cpu := used.GetCpuMillis() + n.Pending.MilliCPU + d.MilliCPU
	mem := used.GetMemoryBytes() + n.Pending.MemoryBytes + d.MemoryBytes
	gpus := n.Pending.GPUs + d.GPUs
	c.now = n.Node.GetQueuedTasks() == 0 && cpu <= alloc.GetCpuMillis() && mem <= alloc.GetMemoryBytes() && gpus <= free
	if c.now {
		c.load = max(share(cpu, alloc.GetCpuMillis()), share(mem, alloc.GetMemoryBytes()))
		if d.GPUs > 0 {
			c.load = max(c.load, share(int64(matching-free+gpus), int64(matching)))
		}
		return c, ""
	}
	// It would queue: the queue ahead of it, in units of how many tasks
	// of its size the node runs at once.
	ahead := float64(int(n.Node.GetQueuedTasks())+n.PendingTasks+1) / float64(slots(d, alloc, matching))
	c.load = ahead
	return c, ""
}

// share is used/total, 0 for a zero total with nothing used.
func share(used, total int64) float64 {
	if total <= 0 {
		if used <= 0 {
			return 0
		}
		return 1
	}
	return float64(used) / float64(total)
}

// slots is how many tasks of size d a node with alloc (and matching GPUs)
// runs at once; at least 1.
func slots(d demand, alloc *pcnodev1.ResourceList, gpus int) int {
	n := -1
	lower := func(k int64) {
		if n < 0 || int(k) < n {
			n = int(k)
		}
	}
	if d.MilliCPU > 0 {
		lower(alloc.GetCpuMillis() / d.MilliCPU)
	}
	if d.MemoryBytes > 0 {
		lower(alloc.GetMemoryBytes() / d.MemoryBytes)
	}
	if d.GPUs > 0 {
		lower(int64(gpus / d.GPUs))
	}
	return max(n, 1)
}

// gpuMatches reports whether g satisfies d's GPU selector.
func gpuMatches(g *pcnodev1.Gpu, d demand) bool {
	if d.GPUMinMemoryBytes > 0 && g.GetMemoryTotalBytes() < d.GPUMinMemoryBytes {
		return false
	}
	if d.GPUModel != "" && !strings.Contains(strings.ToLower(g.GetModel()), strings.ToLower(d.GPUModel)) {
		return false
	}
	return true
}

// selectorText describes d's GPU selector for a reason ("" when none).
func selectorText(d demand) string {
	var parts []string
	if d.GPUModel != "" {
		parts = append(parts, fmt.Sprintf("model %q", d.GPUModel))
	}
	if d.GPUMinMemoryBytes > 0 {
		parts = append(parts, fmt.Sprintf("at least %d bytes each", d.GPUMinMemoryBytes))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
