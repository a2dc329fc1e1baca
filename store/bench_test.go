package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// benchStores are the implementations each benchmark runs against.
var benchStores = []struct {
	name string
	open func(b *testing.B) store.Store
}{
	{"bolt", func(b *testing.B) store.Store { db, _ := openBolt(b); return db }},
	{"memory", func(*testing.B) store.Store { return store.NewMemory() }},
}

// benchTask is a task of typical size: a spec with bindings, env and labels.
func benchTask(i int) *pcnodev1.Task {
	states := []pcnodev1.TaskState{
		pcnodev1.TaskState_TASK_STATE_QUEUED,
		pcnodev1.TaskState_TASK_STATE_RUNNING,
		pcnodev1.TaskState_TASK_STATE_SUCCEEDED,
		pcnodev1.TaskState_TASK_STATE_SUCCEEDED,
		pcnodev1.TaskState_TASK_STATE_FAILED,
	}
	now := time.Now()
	return &pcnodev1.Task{
		Id:    store.NewID(now),
		State: states[i%len(states)],
		Spec: &pcnodev1.TaskSpec{
			Name:     fmt.Sprintf("dcm2nifti series %d", i),
			Image:    "registry.example.org/kaapana/dcm2nifti:0.3.1",
			Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "default"},
			Inputs:   []*pcnodev1.ChannelBinding{{Name: "dicom", HostPath: "/data/batch/series/dicom"}},
			Outputs:  []*pcnodev1.ChannelBinding{{Name: "nifti", HostPath: "/data/batch/series/nifti"}},
			Env:      []*pcnodev1.EnvVar{{Name: "MODE", Value: "fast"}, {Name: "THREADS", Value: "4"}},
			Labels:   map[string]string{"dag": fmt.Sprint("run-", i%10), "project": "demo"},
		},
		CreateTime: timestamppb.New(now),
		FinishTime: timestamppb.New(now),
	}
}

func BenchmarkCreateTask(b *testing.B) {
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.open(b)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				if _, _, err := s.CreateTask(ctx, benchTask(i), fmt.Sprint("key-", i), []byte("hash")); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkListTasks(b *testing.B) {
	const n = 2000
	cases := []struct {
		name string
		opts store.ListOptions
	}{
		{"all", store.ListOptions{}},
		{"state", store.ListOptions{States: []pcnodev1.TaskState{pcnodev1.TaskState_TASK_STATE_RUNNING}}},
		{"label", store.ListOptions{Labels: map[string]string{"dag": "run-3"}}},
	}
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.open(b)
			ctx := context.Background()
			for i := range n {
				if _, _, err := s.CreateTask(ctx, benchTask(i), "", nil); err != nil {
					b.Fatal(err)
				}
			}
			for _, c := range cases {
				b.Run(c.name, func(b *testing.B) {
					for b.Loop() {
						page, _, err := s.ListTasks(ctx, c.opts)
						if err != nil || len(page) == 0 {
							b.Fatalf("ListTasks(%+v) = %d tasks, %v", c.opts, len(page), err)
						}
					}
				})
			}
		})
	}
}
