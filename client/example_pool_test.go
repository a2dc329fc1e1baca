package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/pcnode/pcnode/client"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// A scheduler places tasks across three nodes and waits for one. Each task
// gets a stable idempotency key (here from the scheduler's own job id), so
// that a retry after a crash or a lost answer can never run it twice.
func ExamplePool() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	pool, err := client.NewPool(ctx, []client.NodeConfig{
		{Name: "gpu-01", Address: "/run/pcnode/gpu-01.sock"},
		{Name: "gpu-02", Address: "/run/pcnode/gpu-02.sock"},
		{Name: "gpu-03", Address: "/run/pcnode/gpu-03.sock"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	spec := &pcnodev1.TaskSpec{
		Name:     "totalsegmentator",
		Image:    "registry.example.org/kaapana/total-segmentator:0.4",
		Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "segment"},
		Resources: &pcnodev1.ResourceRequirements{
			Requests:    &pcnodev1.ResourceList{CpuMillis: 4000, MemoryBytes: 16 << 30, Gpus: 1},
			GpuSelector: &pcnodev1.GpuSelector{Model: "A100", MinMemoryBytes: 40 << 30},
		},
	}
	placed, err := pool.Submit(ctx, spec, "job-7781/segment")
	var nofit *client.NoFitError
	switch {
	case errors.As(err, &nofit):
		for _, r := range nofit.Reasons {
			fmt.Printf("%s: %s\n", r.Node, r.Reason)
		}
		return
	case errors.Is(err, client.ErrOutcomeUnknown):
		// The node may have the task; submitting the same key again later
		// goes to the same node.
		log.Fatal(err)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Printf("task %s on %s\n", placed.Task.GetId(), placed.Node)

	// Wait follows the task on its node, across restarts of that node.
	task, err := pool.Wait(ctx, placed.Key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(task.GetState(), task.GetExitCode())
}
