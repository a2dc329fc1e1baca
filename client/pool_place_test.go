package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

const mi = 1 << 20

// node is a reachable node report with allocatable cpu (milli) and memory
// (MiB), allocated cpu and memory, queued tasks and GPUs.
func node(name string, cpu, memMi, usedCPU, usedMi int64, queued int32, gpus ...*pcnodev1.Gpu) nodeView {
	return nodeView{Name: name, Reachable: true, Node: &pcnodev1.Node{
		Name:        name,
		Allocatable: &pcnodev1.ResourceList{CpuMillis: cpu, MemoryBytes: memMi * mi, Gpus: int32(len(gpus))},
		Allocated:   &pcnodev1.ResourceList{CpuMillis: usedCPU, MemoryBytes: usedMi * mi},
		QueuedTasks: queued,
		Gpus:        gpus,
	}}
}

func gpu(model string, memGi int64, holder string) *pcnodev1.Gpu {
	m := memGi << 30
	return &pcnodev1.Gpu{Model: model, MemoryTotalBytes: &m, Health: pcnodev1.GpuHealth_GPU_HEALTH_HEALTHY, HolderTaskId: holder}
}

func sick(g *pcnodev1.Gpu) *pcnodev1.Gpu {
	g.Health = pcnodev1.GpuHealth_GPU_HEALTH_UNHEALTHY
	return g
}

func with(v nodeView, f func(*nodeView)) nodeView {
	f(&v)
	return v
}

func TestRank(t *testing.T) {
	small := demand{MilliCPU: 100, MemoryBytes: 100 * mi}
	tests := []struct {
		name  string
		d     demand
		nodes []nodeView
		want  []string
		// reasons: node → substring its reason must contain.
		reasons map[string]string
	}{
		{
			name:  "least loaded after placement first",
			d:     small,
			nodes: []nodeView{node("a", 1000, 1000, 500, 500, 0), node("b", 1000, 1000, 100, 100, 0), node("c", 1000, 1000, 300, 300, 0)},
			want:  []string{"b", "c", "a"},
		},
		{
			name: "load is a share of the node, so a bigger node takes more",
			d:    small,
			// a: 400/4000 = 10% + 2.5%; b: 200/1000 = 20% + 10%.
			nodes: []nodeView{node("a", 4000, 4000, 400, 400, 0), node("b", 1000, 1000, 200, 200, 0)},
			want:  []string{"a", "b"},
		},
		{
			name: "pending reservations count as load",
			d:    small,
			nodes: []nodeView{
				with(node("a", 1000, 1000, 0, 0, 0), func(v *nodeView) {
					v.Pending, v.PendingTasks = demand{MilliCPU: 500, MemoryBytes: 500 * mi}, 5
				}),
				node("b", 1000, 1000, 200, 200, 0),
			},
			want: []string{"b", "a"},
		},
		{
			name: "pending reservations can fill a node: it then queues",
			d:    small,
			nodes: []nodeView{
				with(node("a", 1000, 1000, 0, 0, 0), func(v *nodeView) {
					v.Pending, v.PendingTasks = demand{MilliCPU: 1000, MemoryBytes: 1000 * mi}, 10
				}),
				node("b", 1000, 1000, 900, 900, 0),
			},
			want: []string{"b", "a"},
		},
		{
			name:  "a node with a queue comes after one with room",
			d:     small,
			nodes: []nodeView{node("a", 1000, 1000, 0, 0, 1), node("b", 1000, 1000, 800, 800, 0)},
			want:  []string{"b", "a"},
		},
		{
			name: "when all are full the shortest queue for the size wins",
			d:    small,
			// a runs 10 at once, 5 queued: 0.6; b runs 5, 1 queued: 0.4.
			nodes: []nodeView{node("a", 1000, 1000, 1000, 1000, 5), node("b", 500, 500, 500, 500, 1)},
			want:  []string{"b", "a"},
		},
		{
			name:  "ties by name",
			d:     small,
			nodes: []nodeView{node("b", 1000, 1000, 0, 0, 0), node("a", 1000, 1000, 0, 0, 0)},
			want:  []string{"a", "b"},
		},
		{
			name: "unreachable, draining and unreported nodes are left out",
			d:    small,
			nodes: []nodeView{
				with(node("down", 1000, 1000, 0, 0, 0), func(v *nodeView) { v.Reachable, v.Unreachable = false, "connection refused" }),
				with(node("drain", 1000, 1000, 0, 0, 0), func(v *nodeView) { v.Node.Draining = true }),
				{Name: "new", Reachable: true},
				node("ok", 1000, 1000, 900, 900, 0),
			},
			want:    []string{"ok"},
			reasons: map[string]string{"down": "unreachable: connection refused", "drain": "draining", "new": "no report"},
		},
		{
			name:    "too small for cpu or memory",
			d:       demand{MilliCPU: 2000, MemoryBytes: 2000 * mi},
			nodes:   []nodeView{node("cpu", 1000, 4000, 0, 0, 0), node("mem", 4000, 1000, 0, 0, 0), node("big", 4000, 4000, 3000, 3000, 0)},
			want:    []string{"big"},
			reasons: map[string]string{"cpu": "cpu: needs 2000m, allocatable 1000m", "mem": "memory: needs 2097152000 bytes"},
		},
		{
			name: "gpu count, model and memory",
			d:    demand{MilliCPU: 100, MemoryBytes: mi, GPUs: 2, GPUModel: "a100", GPUMinMemoryBytes: 40 << 30},
			nodes: []nodeView{
				node("t4", 1000, 1000, 0, 0, 0, gpu("Tesla T4", 16, ""), gpu("Tesla T4", 16, "")),
				node("a100-40", 1000, 1000, 0, 0, 0, gpu("NVIDIA A100-SXM4-40GB", 40, ""), gpu("NVIDIA A100-SXM4-40GB", 40, "")),
				node("a100-one-sick", 1000, 1000, 0, 0, 0, gpu("NVIDIA A100 80GB", 80, ""), sick(gpu("NVIDIA A100 80GB", 80, ""))),
				node("a100-busy", 1000, 1000, 0, 0, 0, gpu("NVIDIA A100 80GB", 80, "t1"), gpu("NVIDIA A100 80GB", 80, ""), gpu("NVIDIA A100 80GB", 80, "")),
			},
			// a100-busy has 2 of 3 free (load 1.0), a100-40 2 of 2 (1.0): tie by tasks, then name.
			want:    []string{"a100-40", "a100-busy"},
			reasons: map[string]string{"t4": `gpus: needs 2 (model "a100", at least 42949672960 bytes each), node has 0 healthy that match`, "a100-one-sick": "node has 1 healthy"},
		},
		{
			name: "gpus held: the task queues behind the holder",
			d:    demand{GPUs: 1},
			nodes: []nodeView{
				node("held", 1000, 1000, 0, 0, 0, gpu("A100", 40, "t1")),
				node("free", 1000, 1000, 900, 900, 0, gpu("A100", 40, "")),
			},
			want: []string{"free", "held"},
		},
		{
			name: "pending gpus count",
			d:    demand{GPUs: 1},
			nodes: []nodeView{
				with(node("a", 1000, 1000, 0, 0, 0, gpu("A100", 40, "")), func(v *nodeView) { v.Pending, v.PendingTasks = demand{GPUs: 1}, 1 }),
				node("b", 1000, 1000, 0, 0, 0, gpu("A100", 40, ""), gpu("A100", 40, "t")),
			},
			want: []string{"b", "a"},
		},
		{
			name:    "fits no node",
			d:       demand{MemoryBytes: 10000 * mi},
			nodes:   []nodeView{node("a", 1000, 1000, 0, 0, 0), node("b", 1000, 2000, 0, 0, 0)},
			reasons: map[string]string{"a": "memory: needs", "b": "allocatable 2097152000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reasons := rank(tt.d, tt.nodes)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rank() order (-want +got):\n%s\nreasons: %v", diff, reasons)
			}
			for n, want := range tt.reasons {
				if !strings.Contains(reasons[n], want) {
					t.Errorf("rank() reason for %s = %q, want it to contain %q", n, reasons[n], want)
				}
			}
			for n := range reasons {
				if _, ok := tt.reasons[n]; !ok {
					t.Errorf("rank() reason for %s = %q, want it to be a candidate", n, reasons[n])
				}
			}
		})
	}
}

// TestRankSpreadsBurst places a burst one task at a time, each counted as
// pending like the pool does, and checks that the tasks spread by capacity.
func TestRankSpreadsBurst(t *testing.T) {
	nodes := []nodeView{node("big", 4000, 4000, 0, 0, 0), node("mid", 2000, 2000, 0, 0, 0), node("small", 1000, 1000, 0, 0, 0)}
	d := demand{MilliCPU: 100, MemoryBytes: 100 * mi}
	got := map[string]int{}
	for range 70 {
		order, _ := rank(d, nodes)
		if len(order) == 0 {
			t.Fatal("rank() = no node, want one")
		}
		for i := range nodes {
			if nodes[i].Name == order[0] {
				nodes[i].Pending.MilliCPU += d.MilliCPU
				nodes[i].Pending.MemoryBytes += d.MemoryBytes
				nodes[i].PendingTasks++
			}
		}
		got[order[0]]++
	}
	if want := map[string]int{"big": 40, "mid": 20, "small": 10}; !cmp.Equal(got, want) {
		t.Errorf("70 tasks went %v, want %v (by capacity)", got, want)
	}
}

func TestDemandOf(t *testing.T) {
	tests := []struct {
		name string
		r    *pcnodev1.ResourceRequirements
		want demand
	}{
		{name: "nil", r: nil, want: demand{}},
		{name: "requests", r: &pcnodev1.ResourceRequirements{Requests: &pcnodev1.ResourceList{CpuMillis: 500, MemoryBytes: 7, Gpus: 1}}, want: demand{MilliCPU: 500, MemoryBytes: 7, GPUs: 1}},
		{
			name: "limits without requests reserve the limit",
			r:    &pcnodev1.ResourceRequirements{Limits: &pcnodev1.ResourceList{CpuMillis: 800, MemoryBytes: 9, Gpus: 2}},
			want: demand{MilliCPU: 800, MemoryBytes: 9, GPUs: 2},
		},
		{
			name: "selector",
			r:    &pcnodev1.ResourceRequirements{Requests: &pcnodev1.ResourceList{Gpus: 1}, GpuSelector: &pcnodev1.GpuSelector{Model: "H100", MinMemoryBytes: 80}},
			want: demand{GPUs: 1, GPUModel: "H100", GPUMinMemoryBytes: 80},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := demandOf(tt.r); got != tt.want {
				t.Errorf("demandOf(%v) = %+v, want %+v", tt.r, got, tt.want)
			}
		})
	}
}

func TestNoFitError(t *testing.T) {
	err := error(newNoFitError(map[string]string{"b": "draining", "a": "unreachable"}))
	if !errors.Is(err, ErrNoNodeFits) {
		t.Errorf("errors.Is(%v, ErrNoNodeFits) = false, want true", err)
	}
	want := "no node can take the task\n  a: unreachable\n  b: draining"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	var nf *NoFitError
	if !errors.As(err, &nf) || len(nf.Reasons) != 2 || nf.Reasons[0].Node != "a" {
		t.Errorf("errors.As(NoFitError) = %+v, want reasons sorted by node", nf)
	}
}
