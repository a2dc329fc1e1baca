package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestIntegrationCLIPagesAndGaps checks the CLI against a real pcnoded on
// the two places where the API now cuts what it returns: an output
// channel of 20,000 files (a manifest larger than a 4 MiB client accepts)
// comes in GetTaskOutputs pages that each fit and together hold every file
// on disk, and `get --outputs` shows them all; and `logs` of a log whose
// beginning was rotated away says on stderr which entries are gone.
func TestIntegrationCLIPagesAndGaps(t *testing.T) {
	const nfiles = 20000
	d := daemontest.Start(t, daemontest.Options{NoRace: true, LogLevel: "info", Configure: func(c *config.Config) {
		c.Logs.MaxFileSize = config.MustQuantity("4Ki")
		c.Logs.MaxFiles = 2
	}})
	img := d.ImportImage(t, testimage.Image{}).GetName()
	cli := func(args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, append([]string{"--address", d.Socket}, args...)...)
	}

	// 20,000 files with 200-byte names, kept by preserve_outputs, plus the
	// one the task writes.
	out := d.DataDir(t, "out")
	onDisk := map[string]int64{"result.bin": 1000}
	for i := range nfiles {
		name := fmt.Sprintf("%s-%05d.dcm", strings.Repeat("n", 200), i)
		if err := os.WriteFile(filepath.Join(out, name), []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		onDisk[name] = int64(len(fmt.Sprint(i)))
	}
	task, _ := d.Run(t, &pcnodev1.TaskSpec{
		Name: "many-files", Image: img,
		Template:        &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "write-output"},
		Env:             []*pcnodev1.EnvVar{{Name: "BYTES", Value: "1000"}},
		Outputs:         []*pcnodev1.ChannelBinding{{Name: "out", HostPath: out}},
		PreserveOutputs: true,
	})
	if task.GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
		t.Fatalf("task ended %v: %s", task.GetState(), task.GetMessage())
	}

	// The default page_size cuts pages by count; the largest, 10000 files
	// of ~280 bytes, by the 2 MiB byte bound.
	for _, pageSize := range []int32{0, 10000} {
		t.Run(fmt.Sprintf("GetTaskOutputs pages of %d", pageSize), func(t *testing.T) {
			testOutputPages(t, d, task.GetId(), pageSize, onDisk)
		})
	}

	t.Run("bad page requests", func(t *testing.T) {
		for _, req := range []*pcnodev1.GetTaskOutputsRequest{
			{TaskId: task.GetId(), PageSize: -1},
			{TaskId: task.GetId(), PageSize: 10001},
			{TaskId: task.GetId(), PageToken: "bogus"},
		} {
			_, err := d.Client.Tasks.GetTaskOutputs(t.Context(), req)
			field := "page_size"
			if req.GetPageToken() != "" {
				field = "page_token"
			}
			if err == nil || !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), "InvalidArgument") {
				t.Errorf("GetTaskOutputs(%v) = %v, want InvalidArgument naming %s", req, err, field)
			}
		}
	})

	t.Run("get --outputs", func(t *testing.T) {
		stdout, stderr, code := cli("get", "--outputs", task.GetId())
		if code != exitOK {
			t.Fatalf("get --outputs = exit %d, stderr %q", code, stderr)
		}
		listed := 0
		for _, line := range strings.Split(stdout, "\n") {
			// sha256, size with its unit ("1000 B", "1.5 KiB"), path.
			if f := strings.Fields(line); len(f) == 4 && len(f[0]) == 64 {
				if _, ok := onDisk[f[3]]; !ok {
					t.Errorf("get --outputs lists %q, not on disk", f[3])
				}
				if want := humanBytes(onDisk[f[3]]); f[1]+" "+f[2] != want {
					t.Errorf("get --outputs lists %s as %s %s, want %s", f[3], f[1], f[2], want)
				}
				listed++
			}
		}
		if listed != len(onDisk) || !strings.Contains(stdout, fmt.Sprintf("%d files", nfiles+1)) {
			t.Errorf("get --outputs lists %d files, want %d", listed, len(onDisk))
		}
		stdout, _, code = cli("-o", "json", "get", "--outputs", task.GetId())
		dec := json.NewDecoder(strings.NewReader(stdout))
		var tk, outs map[string]any
		if code != exitOK || dec.Decode(&tk) != nil || dec.Decode(&outs) != nil {
			t.Fatalf("get --outputs -o json = exit %d, not two JSON documents", code)
		}
		mans, _ := outs["manifests"].([]any)
		if len(mans) != 1 {
			t.Fatalf("get --outputs -o json: %d manifests, want one joined manifest", len(mans))
		}
		if files, _ := mans[0].(map[string]any)["files"].([]any); len(files) != len(onDisk) {
			t.Errorf("get --outputs -o json: %d files, want %d", len(files), len(onDisk))
		}
	})

	t.Run("logs tells of rotated entries", func(t *testing.T) {
		// 1 MiB of 64-byte lines is 16384 entries; two 4 KiB files keep
		// the last hundred or so.
		logged, _ := d.Run(t, &pcnodev1.TaskSpec{
			Name: "rotated", Image: img,
			Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "stdout"},
			Env:      []*pcnodev1.EnvVar{{Name: "BYTES", Value: "1Mi"}},
		})
		kept := d.TaskLogs(t, logged.GetId())
		if len(kept) == 0 || kept[0].GetSequence() == 1 {
			t.Fatalf("the log kept %d entries from %d; the test needs its start rotated away", len(kept), kept[0].GetSequence())
		}
		first := kept[0].GetSequence()
		stdout, stderr, code := cli("logs", logged.GetId())
		want := fmt.Sprintf("[pcnode] log entries 1 to %d (%d) were rotated away", first-1, first-1)
		if code != exitOK || !strings.Contains(stderr, want) {
			t.Errorf("logs = exit %d, stderr %q, want it to contain %q", code, stderr, want)
		}
		if n := strings.Count(stdout, "\n"); n != len(kept) {
			t.Errorf("logs printed %d lines, want the %d kept", n, len(kept))
		}
		stdout, _, _ = cli("-o", "json", "logs", logged.GetId())
		line, _, _ := strings.Cut(stdout, "\n")
		var gap struct {
			Gap struct {
				First string `json:"firstMissedSequence"`
				Last  string `json:"lastMissedSequence"`
			} `json:"gap"`
		}
		if err := json.Unmarshal([]byte(line), &gap); err != nil || gap.Gap.First != "1" || gap.Gap.Last != fmt.Sprint(first-1) {
			t.Errorf("logs -o json: first line %q (%v), want the gap 1..%d", line, err, first-1)
		}
	})
}

// testOutputPages pages through the task's outputs with pageSize: every
// page under 4 MiB, every file on disk listed once with its size.
func testOutputPages(t *testing.T, d *daemontest.Daemon, id string, pageSize int32, onDisk map[string]int64) {
	got := map[string]int64{}
	req := &pcnodev1.GetTaskOutputsRequest{TaskId: id, PageSize: pageSize}
	pages, total := 0, 0
	for {
		resp, err := d.Client.Tasks.GetTaskOutputs(t.Context(), req)
		if err != nil {
			t.Fatalf("page %d: GetTaskOutputs = %v", pages, err)
		}
		pages++
		size := proto.Size(resp)
		total += size
		if size >= 4<<20 {
			t.Errorf("page %d is %d bytes, want under 4 MiB", pages, size)
		}
		files := 0
		for _, m := range resp.GetManifests() {
			files += len(m.GetFiles())
		}
		if pageSize == 10000 && pages == 1 && (files >= 10000 || size > 2<<20) {
			t.Errorf("first page of at most 10000: %d files, %d bytes; want it cut at 2 MiB", files, size)
		}
		for _, m := range resp.GetManifests() {
			if m.GetName() != "out" || m.GetFileCount() != int64(len(onDisk)) {
				t.Errorf("page %d: manifest %q with file_count %d, want out with %d", pages, m.GetName(), m.GetFileCount(), int64(len(onDisk)))
			}
			for _, f := range m.GetFiles() {
				if _, dup := got[f.GetPath()]; dup {
					t.Errorf("page %d: %s listed twice", pages, f.GetPath())
				}
				got[f.GetPath()] = f.GetSizeBytes()
			}
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	t.Logf("%d files in %d pages, %d bytes in all", len(got), pages, total)
	if total <= 4<<20 {
		t.Errorf("the whole listing is %d bytes; the test needs more than 4 MiB to prove anything", total)
	}
	if len(got) != len(onDisk) {
		t.Errorf("pages list %d files, want the %d on disk", len(got), len(onDisk))
	}
	for name, size := range onDisk {
		if g, ok := got[name]; !ok || g != size {
			t.Errorf("file %s: listed %v with size %d, want size %d", name, ok, g, size)
		}
	}
}
