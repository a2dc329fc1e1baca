package daemon

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/outputs"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestOutputWarnings(t *testing.T) {
	setuid := func(p string) outputs.Fix {
		return outputs.Fix{Path: p, Kind: outputs.FixSetid, Mode: 0o755 | fs.ModeSetuid}
	}
	t.Run("nothing to say", func(t *testing.T) {
		var w outputWarnings
		w.add(&outputs.Manifest{Name: "out", FileCount: 3}, "")
		if len(w.lines) != 0 || w.summary() != "" {
			t.Errorf("warnings for a clean channel = %q, %q, want none", w.lines, w.summary())
		}
	})
	t.Run("fixes and truncation", func(t *testing.T) {
		var w outputWarnings
		w.add(&outputs.Manifest{Name: "a", FileCount: 2, Fixes: []outputs.Fix{
			setuid("bin/sh"),
			{Path: "sda", Kind: outputs.FixDevice, Mode: 0o666 | fs.ModeDevice},
		}, FixCount: 2}, "tasks.max_output_files = 2")
		w.add(&outputs.Manifest{Name: "b", FileCount: 0, Omitted: 5}, "tasks.max_output_files = 2")
		want := []string{
			`output channel "a": setuid/setgid bits cleared on "bin/sh" (mode 4755, now 0755)`,
			`output channel "a": block device node "sda" (mode 0666) removed`,
			`output channel "b": manifest truncated at tasks.max_output_files = 2 (all channels of a task together): 0 files listed, 5 not listed (they are on the host and were checked like the rest)`,
		}
		if diff := cmp.Diff(want, w.lines); diff != "" {
			t.Errorf("warnings (-want +got):\n%s", diff)
		}
		sum := w.summary()
		for _, part := range []string{"2 setuid/setgid files, device nodes or over-deep directories fixed", "tasks.max_output_files = 2: 5 files not listed"} {
			if !strings.Contains(sum, part) {
				t.Errorf("summary() = %q, want it to contain %q", sum, part)
			}
		}
	})
	t.Run("many fixes are counted, not named", func(t *testing.T) {
		var w outputWarnings
		for _, ch := range []string{"a", "b"} {
			m := &outputs.Manifest{Name: ch, FixCount: 1000, FixFailures: 1}
			for i := range outputs.MaxFixes {
				m.Fixes = append(m.Fixes, setuid(fmt.Sprintf("%s/%d/%s", ch, i, strings.Repeat("x", 1000))))
			}
			w.add(m, "")
		}
		// 20 named, then one count line per channel.
		if len(w.lines) != maxFixWarnings+2 {
			t.Fatalf("got %d warning lines, want %d: %q", len(w.lines), maxFixWarnings+2, w.lines)
		}
		for _, l := range w.lines {
			if len(l) > maxWarningPath+200 {
				t.Errorf("warning of %d bytes, want paths clipped to %d: %.80q…", len(l), maxWarningPath, l)
			}
		}
		if got, want := w.lines[maxFixWarnings], `output channel "a": 980 more`; !strings.HasPrefix(got, want) {
			t.Errorf("count line for a = %q, want prefix %q", got, want)
		}
		if got, want := w.lines[maxFixWarnings+1], `output channel "b": 1000 more`; !strings.HasPrefix(got, want) {
			t.Errorf("count line for b = %q, want prefix %q", got, want)
		}
		if sum := w.summary(); !strings.Contains(sum, "2000 ") || !strings.Contains(sum, "2 of them FAILED") {
			t.Errorf("summary() = %q, want 2000 fixes, 2 failed", sum)
		}
	})
}

func TestClipPath(t *testing.T) {
	long := strings.Repeat("ä", 150) // 300 bytes
	got := clipPath(long)
	if len(got) > maxWarningPath+len("…") || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("clipPath(300 bytes) = %q (%d bytes), want a %d-byte prefix on a rune boundary and …", got, len(got), maxWarningPath)
	}
	if got := clipPath("short"); got != "short" {
		t.Errorf("clipPath(%q) = %q", "short", got)
	}
}

// TestFixOutputs: a task whose outputs are not collected (LOST) still has
// its channels cleared of setuid bits, and is told; a channel that cannot be
// checked is named.
func TestFixOutputs(t *testing.T) {
	d, root := testDaemon(t, "out")
	p := filepath.Join(root, "out", "suid")
	if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	task := &pcnodev1.Task{Id: "t1", Instance: &pcnodev1.TaskInstance{Outputs: []*pcnodev1.Mount{
		{Name: "out", HostPath: filepath.Join(root, "out"), MountedPath: "/out"},
		{Name: "gone", HostPath: filepath.Join(root, "missing"), MountedPath: "/gone"},
	}}}
	got := d.fixOutputs(context.Background(), task)
	if len(got) != 2 || got[0] != `output channel "out": setuid/setgid bits cleared on "suid" (mode 4755, now 0755)` ||
		!strings.HasPrefix(got[1], `output channel "gone": not checked for setuid/setgid files and device nodes: `) {
		t.Errorf("fixOutputs = %q, want the setuid file of out cleared and gone named", got)
	}
	if fi, err := os.Lstat(p); err != nil || fi.Mode() != 0o755 {
		t.Errorf("after fixOutputs, %s is %v (%v), want 0755", p, fi.Mode(), err)
	}
}

func TestManifestBudget(t *testing.T) {
	cfg := config.DefaultConfig().Tasks
	cfg.MaxOutputFiles = 5
	cfg.MaxOutputPathBytes = config.MustQuantity("4Ki")
	b := newManifestBudget(cfg)
	files := func(n, pathLen int) []outputs.File {
		var fs []outputs.File
		for i := range n {
			fs = append(fs, outputs.File{Path: fmt.Sprintf("%0*d", pathLen, i)})
		}
		return fs
	}
	steps := []struct {
		m         *outputs.Manifest
		wantLimit string
		wantOpts  outputs.Options
	}{
		// A channel within both caps, one cut by the path bytes, one cut by
		// the files left, and one with nothing left.
		{&outputs.Manifest{Files: files(1, 96), FileCount: 1}, "", outputs.Options{Workers: 2, MaxFiles: 4, MaxPathBytes: 4000}},
		{&outputs.Manifest{Files: files(2, 1000), FileCount: 2, Omitted: 7}, "tasks.max_output_path_bytes = 4Ki", outputs.Options{Workers: 2, MaxFiles: 2, MaxPathBytes: 2000}},
		{&outputs.Manifest{Files: files(2, 10), FileCount: 2, Omitted: 1}, "tasks.max_output_files = 5", outputs.Options{Workers: 2, MaxFiles: 0, MaxPathBytes: 1980}},
		{&outputs.Manifest{Omitted: 3}, "tasks.max_output_files = 5", outputs.Options{Workers: 2, MaxFiles: 0, MaxPathBytes: 1980}},
	}
	if got, want := b.options(2), (outputs.Options{Workers: 2, MaxFiles: 5, MaxPathBytes: 4096}); got != want {
		t.Errorf("first options = %+v, want %+v", got, want)
	}
	for i, s := range steps {
		if got := b.take(s.m); got != s.wantLimit {
			t.Errorf("step %d: take = %q, want %q", i, got, s.wantLimit)
		}
		if got := b.options(2); got != s.wantOpts {
			t.Errorf("step %d: options after take = %+v, want %+v", i, got, s.wantOpts)
		}
	}
}
