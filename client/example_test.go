package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/pcnode/pcnode/client"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// A scheduler dials a remote node with mutual TLS and submits a task.
func ExampleDial() {
	c, err := client.Dial("node1.example:7443",
		client.WithCA("/etc/pcnode/ca.pem"),
		client.WithClientCertificate("/etc/pcnode/scheduler.pem", "/etc/pcnode/scheduler-key.pem"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	resp, err := c.Tasks.SubmitTask(context.Background(), &pcnodev1.SubmitTaskRequest{
		Spec:           &pcnodev1.TaskSpec{Image: "registry.example/pc/dummy:1", Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "upstream"}},
		IdempotencyKey: "dag-42/upstream",
	})
	var e *client.Error
	switch {
	case errors.Is(err, client.ErrInvalidArgument) && errors.As(err, &e):
		for _, v := range e.Violations {
			fmt.Printf("%s: %s\n", v.GetField(), v.GetDescription())
		}
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("queued", resp.GetTask().GetId())
	}
}

// Run a task on the local node and print its log as it comes.
func ExampleClient_RunEvents() {
	c, err := client.Dial(client.DefaultAddress())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	req := &pcnodev1.RunTaskRequest{
		Target:      &pcnodev1.RunTaskRequest_Submit{Submit: &pcnodev1.SubmitTaskRequest{Spec: &pcnodev1.TaskSpec{Image: "pc/dummy:1", Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "upstream"}}}},
		IncludeLogs: true,
	}
	for ev, err := range c.RunEvents(context.Background(), req) {
		if err != nil {
			log.Fatal(err)
		}
		switch {
		case ev.GetLog() != nil:
			fmt.Printf("%s", ev.GetLog().GetData())
		case ev.GetStateChange() != nil:
			fmt.Println("state", ev.GetStateChange().GetState())
		}
	}
}

// Keep a scheduler's view of a node: watch, and re-list when the watch
// cannot resume.
func ExampleClient_WatchTasks() {
	c, err := client.Dial(client.DefaultAddress())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for {
		err := c.WatchTasks(ctx, &pcnodev1.WatchTasksRequest{SendInitial: true}, func(ev *pcnodev1.TaskEvent) error {
			t := ev.GetStateChange()
			fmt.Println(ev.GetRevision(), t.GetId(), t.GetState())
			return nil
		})
		if !errors.Is(err, client.ErrOutOfRange) {
			log.Fatal(err)
		}
		// Too far behind: start again from the node's current state.
	}
}
