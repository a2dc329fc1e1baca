package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// testOutputsPages pages through manifests by count and by bytes: every
// page within both bounds, the union equal to what was put, every channel
// (an empty one too) with its totals, and bad tokens refused.
func testOutputsPages(t *testing.T, open Opener) {
	s := open(t)
	id := newIDs(3, 0)
	mustCreate(t, s, newTask(id[0], succeeded, nil))
	mustCreate(t, s, newTask(id[1], succeeded, nil))
	mustCreate(t, s, newTask(id[2], succeeded, nil))
	long := &pcnodev1.OutputManifest{Name: "long", HostPath: "/data/out/long"}
	for i := range 1200 {
		// Path lengths from 10 to ~2000 bytes, so pages fill by bytes.
		p := fmt.Sprintf("d/%s%05d.bin", strings.Repeat("x", (i*37)%1990), i)
		long.Files = append(long.Files, &pcnodev1.OutputFile{Path: p, SizeBytes: int64(i), Sha256: fmt.Sprintf("%064x", i)})
	}
	long.FileCount = 1200
	short := &pcnodev1.OutputManifest{Name: "short", HostPath: "/data/out/short", FileCount: 3, TotalBytes: 3,
		Files: []*pcnodev1.OutputFile{{Path: "a", SizeBytes: 1}, {Path: "b", SizeBytes: 1}, {Path: "c", SizeBytes: 1}}}
	put := []*pcnodev1.OutputManifest{long, {Name: "empty", HostPath: "/data/out/empty"}, short}
	if err := s.PutOutputs(ctx(), id[0], put); err != nil {
		t.Fatal(err)
	}
	small := []*pcnodev1.OutputManifest{{Name: "empty", HostPath: "/e"}, short, {Name: "empty2", HostPath: "/e2"}}
	if err := s.PutOutputs(ctx(), id[1], small); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		id       string
		put      []*pcnodev1.OutputManifest
		opts     store.OutputsOptions
		minPages int
	}{
		{"defaults", id[0], put, store.OutputsOptions{}, 2},
		{"by count", id[0], put, store.OutputsOptions{PageSize: 100}, 13},
		{"by bytes", id[0], put, store.OutputsOptions{PageSize: store.MaxOutputsPageSize, MaxBytes: 64 << 10}, 18},
		{"one file a page", id[1], small, store.OutputsOptions{PageSize: 1}, 3},
		{"tiny byte bound", id[1], small, store.OutputsOptions{MaxBytes: 1}, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maxFiles, maxBytes := tc.opts.PageSize, tc.opts.MaxBytes
			if maxFiles == 0 {
				maxFiles = store.DefaultOutputsPageSize
			}
			if maxBytes == 0 {
				maxBytes = store.DefaultPageBytes
			}
			got := map[string]*pcnodev1.OutputManifest{}
			var order []string
			opts, pages := tc.opts, 0
			for {
				page, next, err := s.GetOutputsPage(ctx(), tc.id, opts)
				if err != nil {
					t.Fatalf("page %d: GetOutputsPage = %v", pages, err)
				}
				pages++
				files := 0
				for _, m := range page {
					files += len(m.GetFiles())
				}
				size := proto.Size(&pcnodev1.GetTaskOutputsResponse{Manifests: page})
				if files > maxFiles || (size > maxBytes && len(page) > 1) || (size > maxBytes && files > 1) {
					t.Fatalf("page %d: %d files, %d bytes, want at most %d and %d", pages, files, size, maxFiles, maxBytes)
				}
				for _, m := range page {
					g := got[m.GetName()]
					if g == nil {
						g = proto.CloneOf(m)
						g.Files = nil
						got[m.GetName()] = g
						order = append(order, m.GetName())
					} else if m.GetFileCount() != g.GetFileCount() || m.GetHostPath() != g.GetHostPath() {
						t.Fatalf("page %d: channel %s continues with header %v, want %v", pages, m.GetName(), m, g)
					}
					g.Files = append(g.Files, m.GetFiles()...)
				}
				if next == "" {
					break
				}
				opts.PageToken = next
			}
			if pages < tc.minPages {
				t.Errorf("%d pages, want at least %d", pages, tc.minPages)
			}
			var union []*pcnodev1.OutputManifest
			for _, n := range order {
				union = append(union, got[n])
			}
			if diff := cmp.Diff(tc.put, union, protocmp.Transform()); diff != "" {
				t.Errorf("union of the pages differs from what was put (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("no outputs", func(t *testing.T) {
		page, next, err := s.GetOutputsPage(ctx(), id[2], store.OutputsOptions{})
		if err != nil || len(page) != 0 || next != "" {
			t.Errorf("GetOutputsPage(no outputs) = %v, %q, %v, want nothing", page, next, err)
		}
	})
	_, token, err := s.GetOutputsPage(ctx(), id[0], store.OutputsOptions{PageSize: 10})
	if err != nil || token == "" {
		t.Fatalf("GetOutputsPage(PageSize 10) = %q, %v, want a next token", token, err)
	}
	bad := []struct {
		name string
		id   string
		opts store.OutputsOptions
		want error
	}{
		{"missing task", newIDs(1, 1e9)[0], store.OutputsOptions{}, store.ErrNotFound},
		{"negative page size", id[0], store.OutputsOptions{PageSize: -1}, store.ErrInvalidArgument},
		{"token of another task", id[1], store.OutputsOptions{PageToken: token}, store.ErrInvalidPageToken},
		{"garbage token", id[0], store.OutputsOptions{PageToken: "not a token"}, store.ErrInvalidPageToken},
		{"truncated token", id[0], store.OutputsOptions{PageToken: token[:len(token)-2]}, store.ErrInvalidPageToken},
		{"long token", id[0], store.OutputsOptions{PageToken: strings.Repeat("A", 10000)}, store.ErrInvalidPageToken},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			page, next, err := s.GetOutputsPage(ctx(), tc.id, tc.opts)
			if !errors.Is(err, tc.want) || page != nil || next != "" {
				t.Errorf("GetOutputsPage(%s) = %d manifests, %q, %v, want %v", tc.name, len(page), next, err, tc.want)
			}
		})
	}
}

// testListPageBytes checks that ListTasks pages stop before the task that
// would pass MaxBytes, and that a task larger than the bound still comes,
// alone on its page.
func testListPageBytes(t *testing.T, open Opener) {
	s := open(t)
	ids := newIDs(9, 0)
	for i, id := range ids {
		task := newTask(id, succeeded, nil)
		n := 10 << 10
		if i == 4 {
			n = 100 << 10 // larger than the bound
		}
		task.Spec.Env = []*pcnodev1.EnvVar{{Name: "BIG", Value: strings.Repeat("v", n)}}
		mustCreate(t, s, task)
	}
	opts := store.ListOptions{PageSize: store.MaxPageSize, MaxBytes: 25 << 10}
	got, pages := listAll(t, s, opts)
	if diff := cmp.Diff([]int{2, 2, 1, 2, 2}, pages); diff != "" {
		t.Errorf("page sizes (-want +got):\n%s", diff)
	}
	if len(got) != len(ids) {
		t.Errorf("listed %d tasks, want %d", len(got), len(ids))
	}
}
