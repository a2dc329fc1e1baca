package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// golden compares got with testdata/name.golden (rewriting it with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s differs from %s (-want +got; go test -update rewrites it):\n%s", name, path, d)
	}
}

// TestGoldenTables checks the human tables of list, get, node, image ls,
// watch and drain against golden files made from fixed protos.
func TestGoldenTables(t *testing.T) {
	fixClock(t)
	tasks := fixtureTasks()
	tests := []struct {
		name   string
		render func(*bytes.Buffer)
	}{
		{"list", func(b *bytes.Buffer) { printTaskTable(b, tasks) }},
		{"get-running", func(b *bytes.Buffer) { printTask(b, tasks[0]) }},
		{"get-succeeded-outputs", func(b *bytes.Buffer) { printTask(b, tasks[1]); printManifests(b, fixtureManifests()) }},
		{"get-failed", func(b *bytes.Buffer) { printTask(b, tasks[2]) }},
		{"node", func(b *bytes.Buffer) { printNode(b, fixtureNode()) }},
		{"node-no-gpus", func(b *bytes.Buffer) {
			n := fixtureNode()
			n.Gpus, n.Labels, n.DriverVersion = nil, nil, ""
			printNode(b, n)
		}},
		{"node-drain", func(b *bytes.Buffer) {
			n := fixtureNode()
			n.Draining = true
			printDrainState(b, n)
			n.Draining = false
			printDrainState(b, n)
		}},
		{"image-ls", func(b *bytes.Buffer) { printImageTable(b, fixtureImages()) }},
		{"watch-table", func(b *bytes.Buffer) {
			m := map[string]*pcnodev1.Task{}
			for _, tk := range tasks {
				m[tk.GetId()] = tk
			}
			renderWatchTable(b, m, watchMaxRows)
		}},
		{"watch-table-cut", func(b *bytes.Buffer) {
			m := map[string]*pcnodev1.Task{}
			for _, tk := range tasks {
				m[tk.GetId()] = tk
			}
			renderWatchTable(b, m, 2)
		}},
		{"watch-lines", func(b *bytes.Buffer) {
			for i, tk := range tasks {
				b.WriteString(watchLine(&pcnodev1.TaskEvent{TaskId: tk.GetId(), Time: ts(0), Revision: uint64(10 + i),
					Event: &pcnodev1.TaskEvent_StateChange{StateChange: tk}}))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tt.render(&b)
			// The same data renders the same bytes every time (map
			// order, e.g. node labels, must not leak into the output).
			for range 5 {
				var again bytes.Buffer
				tt.render(&again)
				if !bytes.Equal(again.Bytes(), b.Bytes()) {
					t.Fatalf("%s renders differently from one run to the next:\n%s\n---\n%s", tt.name, b.String(), again.String())
				}
			}
			golden(t, tt.name, b.Bytes())
			if strings.Contains(b.String(), "Ki\n") || strings.Contains(b.String(), "Mi ") || strings.Contains(b.String(), "Gi,") {
				t.Errorf("%s shows a Kubernetes quantity, want human sizes:\n%s", tt.name, b.String())
			}
		})
	}
}

// TestJSONStable checks that -o json is byte-identical across runs for the
// same data, indented with two spaces, parses back into the same message,
// and matches its golden file.
func TestJSONStable(t *testing.T) {
	fixClock(t)
	tests := []struct {
		name string
		msg  proto.Message
	}{
		{"list", &pcnodev1.ListTasksResponse{Tasks: fixtureTasks()}},
		{"node", fixtureNode()},
		{"images", &pcnodev1.ListImagesResponse{Images: fixtureImages()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, err := stableJSON(tt.msg, true)
			if err != nil {
				t.Fatal(err)
			}
			for range 20 {
				// A copy, so nothing cached on the message helps.
				again, err := stableJSON(proto.Clone(tt.msg), true)
				if err != nil || !bytes.Equal(again, first) {
					t.Fatalf("stableJSON(%s) differs between runs (%v):\n%s\n---\n%s", tt.name, err, first, again)
				}
			}
			// Fixed layout: what encoding/json writes with a two-space indent.
			var canon bytes.Buffer
			if err := json.Indent(&canon, first, "", "  "); err != nil || !bytes.Equal(canon.Bytes(), first) {
				t.Errorf("stableJSON(%s) is not in canonical two-space layout (%v):\n%s", tt.name, err, first)
			}
			back := tt.msg.ProtoReflect().New().Interface()
			if err := protojson.Unmarshal(first, back); err != nil {
				t.Fatalf("protojson.Unmarshal(stableJSON(%s)) = %v", tt.name, err)
			}
			if d := cmp.Diff(tt.msg, back, protocmp.Transform()); d != "" {
				t.Errorf("stableJSON(%s) parsed back differs (-want +got):\n%s", tt.name, d)
			}
			golden(t, "json-"+tt.name, first)

			line, err := stableJSON(tt.msg, false)
			if err != nil || bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
				t.Errorf("stableJSON(%s, one line) = %q, %v; want one line", tt.name, line, err)
			}
			var compact bytes.Buffer
			_ = json.Compact(&compact, first)
			if got := strings.TrimSuffix(string(line), "\n"); got != compact.String() {
				t.Errorf("one-line JSON of %s = %s, want %s", tt.name, got, compact.String())
			}
		})
	}
}
