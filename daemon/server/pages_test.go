package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestSplitManifest(t *testing.T) {
	m := &pcnodev1.OutputManifest{Name: "out", HostPath: "/data/out", FileCount: 3000, TotalBytes: 42}
	for i := range 3000 {
		m.Files = append(m.Files, &pcnodev1.OutputFile{Path: fmt.Sprintf("%s/%d", strings.Repeat("p", i%500), i), SizeBytes: int64(i), Sha256: fmt.Sprintf("%064x", i)})
	}
	for _, limit := range []int{1, 4096, 64 << 10, 1 << 20, 100 << 20} {
		parts := splitManifest(m, limit)
		var files []*pcnodev1.OutputFile
		for i, p := range parts {
			if p.GetName() != m.GetName() || p.GetHostPath() != m.GetHostPath() || p.GetFileCount() != 3000 || p.GetTotalBytes() != 42 {
				t.Fatalf("limit %d: part %d header = %v, want the whole channel's", limit, i, p)
			}
			if size := proto.Size(p); size > limit && len(p.GetFiles()) > 1 {
				t.Errorf("limit %d: part %d is %d bytes with %d files", limit, i, size, len(p.GetFiles()))
			}
			if len(p.GetFiles()) == 0 {
				t.Errorf("limit %d: part %d has no files", limit, i)
			}
			files = append(files, p.GetFiles()...)
		}
		if diff := cmp.Diff(m.GetFiles(), files, protocmp.Transform()); diff != "" {
			t.Errorf("limit %d: files of the parts differ (-want +got):\n%s", limit, diff)
		}
		if limit >= proto.Size(m) && (len(parts) != 1 || parts[0] != m) {
			t.Errorf("limit %d: a manifest that fits was split into %d", limit, len(parts))
		}
	}
}

func TestBoundProblems(t *testing.T) {
	var ps []*pcnodev1.Problem
	for i := range 1000 {
		ps = append(ps, &pcnodev1.Problem{Field: fmt.Sprintf("spec.env[%d].value", i), Description: strings.Repeat("d", 100)})
	}
	if got := boundProblems(ps, 1<<20); len(got) != 1000 {
		t.Errorf("boundProblems(1 MiB) kept %d of 1000, want all", len(got))
	}
	got := boundProblems(ps, 10<<10)
	if size := proto.Size(&pcnodev1.SubmitError{Problems: got[:len(got)-1]}); size > 10<<10 {
		t.Errorf("kept problems are %d bytes, want at most %d", size, 10<<10)
	}
	last := got[len(got)-1].GetDescription()
	if want := fmt.Sprintf("%d more problems not shown", 1000-(len(got)-1)); last != want {
		t.Errorf("last problem = %q, want %q", last, want)
	}
	if ps[len(got)-1].GetDescription() == last {
		t.Error("boundProblems changed its argument")
	}
}
