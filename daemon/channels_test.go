package daemon

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pcnode/pcnode/daemon/hostpath"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// chanTask is a task whose instance binds inputs and outputs (name → host
// path, in order) and whose spec binds the same names to specPaths (nil:
// the same paths).
func chanTask(id string, ins, outs [][2]string, specPaths map[string]string) *pcnodev1.Task {
	task := &pcnodev1.Task{Id: id, Spec: &pcnodev1.TaskSpec{Image: "img"}, Instance: &pcnodev1.TaskInstance{}}
	bind := func(name, p string) *pcnodev1.ChannelBinding {
		if sp, ok := specPaths[name]; ok {
			p = sp
		}
		return &pcnodev1.ChannelBinding{Name: name, HostPath: p}
	}
	for _, c := range ins {
		task.Instance.Inputs = append(task.Instance.Inputs, &pcnodev1.Mount{Name: c[0], HostPath: c[1], MountedPath: "/in/" + c[0], ReadOnly: true})
		task.Spec.Inputs = append(task.Spec.Inputs, bind(c[0], c[1]))
	}
	for _, c := range outs {
		task.Instance.Outputs = append(task.Instance.Outputs, &pcnodev1.Mount{Name: c[0], HostPath: c[1], MountedPath: "/out/" + c[0]})
		task.Spec.Outputs = append(task.Spec.Outputs, bind(c[0], c[1]))
	}
	return task
}

func TestOpenChannels(t *testing.T) {
	d, root := testDaemon(t, "real/in", "real/out", "other")
	defer d.paths.Close()
	outside := t.TempDir()
	for name, target := range map[string]string{
		"link-in":  filepath.Join(root, "real/in"),
		"link-out": filepath.Join(root, "real/out"),
		"escape":   outside,
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	p := func(rel string) string { return filepath.Join(root, rel) }
	for _, tc := range []struct {
		name      string
		task      *pcnodev1.Task
		late      bool
		wantErr   error
		wantWords []string
		created   string // relative to root, must exist afterwards
	}{
		{name: "plain", task: chanTask("t", [][2]string{{"in", p("real/in")}}, [][2]string{{"out", p("real/out")}}, nil)},
		{name: "output created", task: chanTask("t", nil, [][2]string{{"out", p("real/new/out")}}, nil), created: "real/new/out"},
		{name: "input symlink inside", task: chanTask("t", [][2]string{{"in", p("link-in")}}, nil, nil),
			wantErr: hostpath.ErrSymlink, wantWords: []string{`input channel "in"`, "inputs[0].host_path", "symlink"}},
		{name: "output symlink inside", task: chanTask("t", nil, [][2]string{{"out", p("link-out")}}, nil),
			wantErr: hostpath.ErrSymlink, wantWords: []string{`output channel "out"`, "outputs[0].host_path"}},
		{name: "output below symlink outside", task: chanTask("t", nil, [][2]string{{"out", p("escape/new")}}, nil),
			wantErr: hostpath.ErrSymlink},
		{name: "output outside", task: chanTask("t", nil, [][2]string{{"out", filepath.Join(outside, "x")}}, nil),
			wantErr: hostpath.ErrOutsideRoots},
		{name: "input missing", task: chanTask("t", [][2]string{{"in", p("gone")}}, nil, nil), wantErr: hostpath.ErrNotExist},
		// Resolved while preparing (image pulled at start): the spec's
		// own path is opened and must lead where the resolution did.
		{name: "late same", late: true, task: chanTask("t", nil, [][2]string{{"out", p("real/out")}}, nil)},
		{name: "late spec through symlink", late: true,
			task:    chanTask("t", nil, [][2]string{{"out", p("real/out")}}, map[string]string{"out": p("link-out")}),
			wantErr: hostpath.ErrSymlink, wantWords: []string{"spec.outputs[0].host_path"}},
		{name: "late resolved elsewhere", late: true,
			task:    chanTask("t", nil, [][2]string{{"out", p("other")}}, map[string]string{"out": p("real/out")}),
			wantErr: hostpath.ErrChanged, wantWords: []string{"spec.outputs[0].host_path", "opens"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := d.openChannels(tc.task, tc.late)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("openChannels(%s) = %v, want %v", tc.name, err, tc.wantErr)
				}
				for _, w := range tc.wantWords {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("openChannels(%s) error %q does not say %q", tc.name, err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("openChannels(%s) = %v", tc.name, err)
			}
			if len(c.inputs) != len(tc.task.GetInstance().GetInputs()) || len(c.outputs) != len(tc.task.GetInstance().GetOutputs()) {
				t.Errorf("openChannels(%s) opened %d inputs, %d outputs", tc.name, len(c.inputs), len(c.outputs))
			}
			if tc.created != "" {
				if _, err := os.Lstat(p(tc.created)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("openChannels(%s) created %s already: %v; claimChannels creates it", tc.name, tc.created, err)
				}
			}
			if err := d.claimChannels(c); err != nil {
				c.close()
				t.Fatalf("claimChannels(%s) = %v", tc.name, err)
			}
			defer d.dropChannels(tc.task.GetId())
			if tc.created != "" {
				if fi, err := os.Lstat(p(tc.created)); err != nil || !fi.IsDir() {
					t.Errorf("openChannels(%s): %s not created: %v", tc.name, tc.created, err)
				}
			}
		})
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("something was created outside the data root: %v", entries)
	}
}

func TestClaimChannels(t *testing.T) {
	d, root := testDaemon(t, "a/b/c", "x", "y", "z")
	defer d.paths.Close()
	p := func(rel string) string { return filepath.Join(root, rel) }
	open := func(task *pcnodev1.Task) *taskChannels {
		t.Helper()
		c, err := d.openChannels(task, false)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Within one task.
	for _, tc := range []struct {
		name string
		task *pcnodev1.Task
		want string // "" for accepted
	}{
		{"disjoint", chanTask("t1", [][2]string{{"in", p("x")}}, [][2]string{{"out", p("y")}}, nil), ""},
		{"two inputs the same", chanTask("t1", [][2]string{{"i1", p("x")}, {"i2", p("x")}}, [][2]string{{"out", p("y")}}, nil), ""},
		{"output is input", chanTask("t1", [][2]string{{"in", p("x")}}, [][2]string{{"out", p("x")}}, nil), "is the same directory as"},
		{"output contains input", chanTask("t1", [][2]string{{"in", p("a/b/c")}}, [][2]string{{"out", p("a")}}, nil), "contains"},
		{"output inside output", chanTask("t1", nil, [][2]string{{"o1", p("a/b")}, {"o2", p("a")}}, nil), "lies inside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := open(tc.task)
			defer d.dropChannels("t1")
			err := d.claimChannels(c)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("claimChannels(%s) = %v", tc.name, err)
				}
				return
			}
			c.close()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "outputs are emptied") {
				t.Fatalf("claimChannels(%s) = %v, want an error saying %q", tc.name, err, tc.want)
			}
			t.Logf("claimChannels(%s) = %v", tc.name, err)
		})
	}

	// Across tasks: a running task's channels are protected from later
	// outputs, whatever they are called now.
	running := open(chanTask("run", [][2]string{{"in", p("x")}}, [][2]string{{"out", p("a/b")}}, nil))
	if err := d.claimChannels(running); err != nil {
		t.Fatal(err)
	}
	defer d.dropChannels("run")
	for _, tc := range []struct {
		name string
		task *pcnodev1.Task
		want string
	}{
		{"reads the running output", chanTask("t2", [][2]string{{"in", p("a/b")}}, [][2]string{{"out", p("z")}}, nil), ""},
		{"output is a running output", chanTask("t2", nil, [][2]string{{"out", p("a/b")}}, nil), "is the same directory as"},
		{"output contains a running output", chanTask("t2", nil, [][2]string{{"out", p("a")}}, nil), "contains"},
		{"output inside a running output", chanTask("t2", nil, [][2]string{{"out", p("a/b/c")}}, nil), "lies inside"},
		{"output is a running input", chanTask("t2", nil, [][2]string{{"out", p("x")}}, nil), "is the same directory as"},
		{"new output inside a running output", chanTask("t2", nil, [][2]string{{"out", p("a/b/new/deeper")}}, nil), "would lie inside"},
		{"new output inside a running input", chanTask("t2", nil, [][2]string{{"out", p("x/new")}}, nil), "would lie inside"},
		{"new output beside", chanTask("t2", nil, [][2]string{{"out", p("a/new")}}, nil), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := open(tc.task)
			defer d.dropChannels("t2")
			err := d.claimChannels(c)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("claimChannels(%s) = %v", tc.name, err)
				}
				return
			}
			c.close()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "of task run") {
				t.Fatalf("claimChannels(%s) = %v, want an error saying %q of task run", tc.name, err, tc.want)
			}
			t.Logf("claimChannels(%s) = %v", tc.name, err)
			// Nothing was created inside the running task's channels.
			for _, rel := range []string{"a/b/new", "x/new"} {
				if _, err := os.Lstat(p(rel)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("claimChannels(%s) left %s: %v", tc.name, rel, err)
				}
			}
		})
	}

	// Renamed after both were opened: z moved below the running output is
	// seen on the objects.
	late := open(chanTask("t3", nil, [][2]string{{"out", p("z")}}, nil))
	if err := os.Rename(p("z"), p("a/b/z")); err != nil {
		t.Fatal(err)
	}
	err := d.claimChannels(late)
	late.close()
	if err == nil || !strings.Contains(err.Error(), "lies inside") {
		t.Errorf("claimChannels(output moved into a running output) = %v, want lies inside", err)
	}
	if d.taskChannelsOf("t3") != nil {
		t.Errorf("a refused task's channels were registered")
	}
}

func TestOpenOutputRefusesAReplacedDirectory(t *testing.T) {
	d, root := testDaemon(t, "job/out")
	defer d.paths.Close()
	task := chanTask("t", nil, [][2]string{{"out", filepath.Join(root, "job/out")}}, nil)
	c, err := d.openChannels(task, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.claimChannels(c); err != nil {
		t.Fatal(err)
	}
	defer d.dropChannels("t")
	if dir, err := d.openOutput(task, 0); err != nil {
		t.Fatalf("openOutput = %v", err)
	} else {
		dir.Close()
	}
	// A real directory put in the output's place while the task ran.
	if err := os.Rename(filepath.Join(root, "job/out"), filepath.Join(root, "job/out.moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "job/out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := d.openOutput(task, 0); !errors.Is(err, hostpath.ErrChanged) {
		t.Errorf("openOutput of a replaced directory = %v, want %v", err, hostpath.ErrChanged)
	}
	// A symlink in its place.
	if err := os.Remove(filepath.Join(root, "job/out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "job/out.moved"), filepath.Join(root, "job/out")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.openOutput(task, 0); !errors.Is(err, hostpath.ErrSymlink) {
		t.Errorf("openOutput of a symlink = %v, want %v", err, hostpath.ErrSymlink)
	}
}

// TestReopenChannels: a task re-attached after a restart has its channels
// opened again (nothing created) and protected from later outputs.
func TestReopenChannels(t *testing.T) {
	d, root := testDaemon(t, "in", "out")
	defer d.paths.Close()
	d.log = slog.New(slog.DiscardHandler)
	p := func(rel string) string { return filepath.Join(root, rel) }
	d.reopenChannels(chanTask("run", [][2]string{{"in", p("in")}}, [][2]string{{"out", p("out")}, {"gone", p("gone")}}, nil))
	defer d.dropChannels("run")
	c := d.taskChannelsOf("run")
	if c == nil || len(c.inputs) != 1 || len(c.outputs) != 0 {
		t.Fatalf("reopenChannels with a missing output registered %+v, want the input only (outputs all or none)", c)
	}
	if _, err := os.Lstat(p("gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reopenChannels created a missing output: %v", err)
	}
	later, err := d.openChannels(chanTask("t2", nil, [][2]string{{"out", p("in")}}, nil), false)
	if err != nil {
		t.Fatal(err)
	}
	err = d.claimChannels(later)
	later.close()
	if err == nil || !strings.Contains(err.Error(), "of task run") {
		t.Errorf("claimChannels(output = input of a re-attached task) = %v, want refused", err)
	}
}
