package daemon

import (
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pcnode/pcnode/daemon/outputs"
	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func manifestToProto(m *outputs.Manifest) *pcnodev1.OutputManifest {
	out := &pcnodev1.OutputManifest{Name: m.Name, HostPath: m.HostPath, FileCount: m.FileCount, TotalBytes: m.TotalBytes}
	out.Files = make([]*pcnodev1.OutputFile, 0, len(m.Files))
	for _, f := range m.Files {
		out.Files = append(out.Files, &pcnodev1.OutputFile{Path: f.Path, SizeBytes: f.Size, Sha256: f.SHA256})
	}
	return out
}

func usageToProto(u runtime.Usage) *pcnodev1.Usage {
	return &pcnodev1.Usage{PeakMemoryBytes: int64(u.PeakMemoryBytes), CpuTime: durationpb.New(u.CPUTime)}
}

func allocationToProto(a sched.Assignment) *pcnodev1.Allocation {
	out := &pcnodev1.Allocation{MemoryBytes: a.Resources.MemoryBytes, CpuMillis: a.Resources.MilliCPU}
	for _, g := range a.GPUs {
		out.Gpus = append(out.Gpus, &pcnodev1.GpuAssignment{Index: int32(g.Index), Uuid: g.UUID})
	}
	return out
}

func resourcesToProto(r sched.Resources) *pcnodev1.ResourceList {
	return &pcnodev1.ResourceList{MemoryBytes: r.MemoryBytes, CpuMillis: r.MilliCPU, Gpus: int32(r.GPUs)}
}
