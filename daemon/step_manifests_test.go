package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestWriteManifests(t *testing.T) {
	d, root := stepDaemon(t, newFakeRuntime(stepImage), "out/sub")
	for name, data := range map[string]string{"out/a.txt": "hello\n", "out/sub/b.bin": "0123456789"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	task := stepTask(t, d, root, "out")
	r := stepRunner(t, d, task.GetId())
	var first []*pcnodev1.OutputManifest
	// The second run is a crash after the manifests were stored: the walk
	// finds the same and replaces what is stored.
	for run := range 2 {
		o := &outcome{msg: "exited 3"}
		if err := r.writeManifests(context.Background(), task, o); err != nil {
			t.Fatalf("writeManifests() run %d error = %v", run, err)
		}
		wantSum := []*pcnodev1.OutputSummary{{Name: "out", FileCount: 2, TotalBytes: 16}}
		if diff := cmp.Diff(wantSum, o.summaries, protocmp.Transform()); diff != "" || o.msg != "exited 3" {
			t.Errorf("writeManifests() run %d summaries (-want +got):\n%s; message %q", run, diff, o.msg)
		}
		got, err := d.store.GetOutputs(context.Background(), task.GetId())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].GetFileCount() != 2 || got[0].GetHostPath() != filepath.Join(root, "out") {
			t.Fatalf("stored manifests run %d = %v, want one of out with 2 files", run, got)
		}
		if run == 0 {
			first = got
		} else if diff := cmp.Diff(first, got, protocmp.Transform()); diff != "" {
			t.Errorf("manifests after a re-run differ (-first +second):\n%s", diff)
		}
	}
}

func TestWriteManifestsDetached(t *testing.T) {
	d, root := stepDaemon(t, newFakeRuntime(stepImage), "out")
	if err := os.WriteFile(filepath.Join(root, "out", "a.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	task := stepTask(t, d, root, "out")
	r := stepRunner(t, d, task.GetId())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.writeManifests(ctx, task, &outcome{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("writeManifests() detached error = %v, want context.Canceled", err)
	}
	if got, err := d.store.GetOutputs(context.Background(), task.GetId()); err != nil || len(got) != 0 {
		t.Errorf("manifests stored by a detached walk: %v, %v; want none", got, err)
	}
}

func TestWriteManifestsMissingOutput(t *testing.T) {
	d, root := stepDaemon(t, newFakeRuntime(stepImage))
	task := stepTask(t, d, root, "gone")
	r := stepRunner(t, d, task.GetId())
	o := &outcome{msg: "exited 0"}
	if err := r.writeManifests(context.Background(), task, o); err != nil {
		t.Fatalf("writeManifests() error = %v", err)
	}
	if want := "exited 0; output manifest: channel \"gone\""; len(o.msg) < len(want) || o.msg[:len(want)] != want {
		t.Errorf("message = %q, want it to start %q", o.msg, want)
	}
}
