package main

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// fixedNow is the clock of the golden tables.
var fixedNow = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// fixClock makes tables independent of when and where the test runs: the
// clock is fixedNow and the local zone UTC.
func fixClock(t *testing.T) {
	t.Helper()
	oldNow, oldZone := now, zone
	now, zone = func() time.Time { return fixedNow }, time.UTC
	t.Cleanup(func() { now, zone = oldNow, oldZone })
}

func ts(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(fixedNow.Add(d)) }

func ptr[T any](v T) *T { return &v }

// fixtureTasks are tasks in every state the tables show.
func fixtureTasks() []*pcnodev1.Task {
	res := &pcnodev1.ResourceRequirements{
		Requests: &pcnodev1.ResourceList{CpuMillis: 1500, MemoryBytes: 24684084 * 1024, Gpus: 1},
		Limits:   &pcnodev1.ResourceList{CpuMillis: 2000, MemoryBytes: 32 << 30, Gpus: 1},
	}
	return []*pcnodev1.Task{
		{
			Id: "01JDQ3X7Z0A8B9C7D6E5F4G3H2", State: pcnodev1.TaskState_TASK_STATE_RUNNING,
			Spec:       &pcnodev1.TaskSpec{Name: "total-segmentator", Image: "registry.example.org/kaapana/total-seg:0.4.1", Labels: map[string]string{"dag": "seg", "run": "7"}},
			Instance:   &pcnodev1.TaskInstance{TemplateIdentifier: "segment", Resources: res},
			CreateTime: ts(-5 * time.Minute), StartTime: ts(-92 * time.Second),
			ImageDigest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			SubmittedBy: "spiffe://example.org/scheduler",
			Allocation:  &pcnodev1.Allocation{Gpus: []*pcnodev1.GpuAssignment{{Index: 0, Uuid: "GPU-3f2a1b4c-0000-1111-2222-333344445555"}}},
		},
		{
			Id: "01JDQ2W6Y9Z8A7B6C5D4E3F2G1", State: pcnodev1.TaskState_TASK_STATE_SUCCEEDED, Reason: pcnodev1.TaskReason_TASK_REASON_COMPLETED,
			Spec:       &pcnodev1.TaskSpec{Name: "dcm2nifti", Image: "registry.example.org/kaapana/dcm2nifti:1.2"},
			Instance:   &pcnodev1.TaskInstance{TemplateIdentifier: "convert", Resources: res},
			CreateTime: ts(-3 * time.Hour), StartTime: ts(-3*time.Hour + 10*time.Second), FinishTime: ts(-3*time.Hour + 10*time.Second + 2*time.Hour + 5*time.Minute + 20*time.Second),
			Message: "exited 0",
			Usage:   &pcnodev1.Usage{PeakMemoryBytes: 3 << 29, CpuTime: durationpb.New(4*time.Hour + 10*time.Minute), PeakGpuMemoryBytes: 10 << 30},
			Outputs: []*pcnodev1.OutputSummary{{Name: "nifti", FileCount: 42, TotalBytes: 734003200}},
		},
		{
			Id: "01JDQ1V5X8Y7Z6A5B4C3D2E1F0", State: pcnodev1.TaskState_TASK_STATE_FAILED, Reason: pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT, ExitCode: 3,
			Spec:       &pcnodev1.TaskSpec{Image: "pcnode.test/cli:1"},
			CreateTime: ts(-26 * time.Hour), StartTime: ts(-26*time.Hour + time.Second), FinishTime: ts(-26*time.Hour + time.Second + 450*time.Millisecond),
			Message:  "exited 3",
			Warnings: []string{"env FOO is not declared by the template"},
		},
		{
			Id: "01JDQ0U4W7X6Y5Z4A3B2C1D0E9", State: pcnodev1.TaskState_TASK_STATE_QUEUED,
			Spec:       &pcnodev1.TaskSpec{Name: "queued\twith a tab", Image: "pcnode.test/cli:1"},
			CreateTime: ts(-45 * time.Second),
		},
	}
}

func fixtureManifests() []*pcnodev1.OutputManifest {
	return []*pcnodev1.OutputManifest{{
		Name: "nifti", HostPath: "/data/out/nifti", FileCount: 3, TotalBytes: 734003200 + 1536 + 17,
		Files: []*pcnodev1.OutputFile{
			{Path: "ct.nii.gz", SizeBytes: 734003200, Sha256: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"},
			{Path: "meta/info.json", SizeBytes: 1536, Sha256: "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"},
			{Path: "evil\nname", SizeBytes: 17, Sha256: "baa5a0964d3320fbc0c6a922140453c8513ea24ab8fd0577034804a967248096"},
		},
	}}
}

func fixtureNode() *pcnodev1.Node {
	return &pcnodev1.Node{
		Name: "gpu-node-07", Labels: map[string]string{"zone": "b", "rack": "r12", "gpu": "a100"},
		Version: "0.8.0", ContainerdVersion: "2.1.4", DriverVersion: "550.54.15", CudaVersion: "12.4", GpuBackend: "nvml",
		Capacity:     &pcnodev1.ResourceList{CpuMillis: 64000, MemoryBytes: 512 << 30, Gpus: 2},
		Allocatable:  &pcnodev1.ResourceList{CpuMillis: 62000, MemoryBytes: 500 << 30, Gpus: 2},
		Allocated:    &pcnodev1.ResourceList{CpuMillis: 1500, MemoryBytes: 24684084 * 1024, Gpus: 1},
		RunningTasks: 1, QueuedTasks: 1, StartTime: ts(-(3*24*time.Hour + 4*time.Hour + 10*time.Minute)),
		Gpus: []*pcnodev1.Gpu{
			{
				Index: 0, Uuid: "GPU-3f2a1b4c-0000-1111-2222-333344445555", Model: "NVIDIA A100-SXM4-80GB", NumaNode: ptr(int32(0)),
				MemoryTotalBytes: ptr(int64(80 << 30)), MemoryUsedBytes: ptr(int64(23<<30 + 512<<20)),
				TemperatureCelsius: ptr(int32(61)), UtilizationPercent: ptr(int32(97)),
				PowerDrawMilliwatts: ptr(int64(312000)), PowerLimitMilliwatts: ptr(int64(400000)),
				Health: pcnodev1.GpuHealth_GPU_HEALTH_HEALTHY, HolderTaskId: "01JDQ3X7Z0A8B9C7D6E5F4G3H2",
			},
			{
				Index: 1, Uuid: "GPU-9a8b7c6d-5555-4444-3333-222211110000", Model: "NVIDIA A100-SXM4-80GB",
				Health: pcnodev1.GpuHealth_GPU_HEALTH_UNHEALTHY, LastXid: &pcnodev1.Xid{Code: 79},
			},
		},
	}
}

func fixtureImages() []*pcnodev1.Image {
	return []*pcnodev1.Image{
		{Name: "registry.example.org/kaapana/total-seg:0.4.1", Digest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			SizeBytes: 7_800_000_000, CreateTime: ts(-48 * time.Hour), UsedByTaskIds: []string{"01JDQ3X7Z0A8B9C7D6E5F4G3H2"}},
		{Name: "pcnode.test/cli:1", Digest: "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
			SizeBytes: 2_345_678, CreateTime: ts(-time.Hour)},
	}
}
