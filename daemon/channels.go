package daemon

import (
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/pcnode/pcnode/daemon/hostpath"
	"github.com/pcnode/pcnode/daemon/runtime"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// A task's host directories, from prepare to its end:
//
//	open:    every input and output directory is opened from its data
//	         root's descriptor without following symlinks (of a missing
//	         output, its deepest existing directory); from then on the
//	         daemon uses the descriptors, never the names
//	claim:   on the opened objects (device and inode of each directory and
//	         of its ancestors, as they are now), no output may be, contain or
//	         lie inside another channel of the task, nor any channel of a
//	         task that is preparing or running; missing outputs are then
//	         created from the opened directory and the task's channels
//	         registered, under the same lock, so two tasks cannot both pass
//	empty:   outputs are emptied through their descriptors
//	stage:   each directory is bind-mounted from its descriptor below
//	         <state>/staging/<task>/, and that path, which leads to the
//	         checked object and lies where no container can reach, is what
//	         containerd is given as the mount source
//	unstage: after the container started (it keeps its own mounts) or failed
//	         to, the staging mounts are detached and removed
//	drop:    when the task ends its descriptors are closed
//
// Manifests after exit re-open each output the same way and hash through
// that descriptor; a directory that is not the one the task had is refused.

// taskChannels are a task's opened host directories, in the instance's
// order.
type taskChannels struct {
	task    string
	inputs  []*hostpath.Dir
	outputs []*hostpath.Dir
	// missing[i] are the elements below outputs[i] still to be created
	// (outputs[i] is then the deepest existing directory); claimChannels
	// creates them.
	missing [][]string
	names   map[*hostpath.Dir]string // channel name, for messages
}

func (c *taskChannels) close() {
	if c == nil {
		return
	}
	for _, d := range c.inputs {
		d.Close()
	}
	for _, d := range c.outputs {
		d.Close()
	}
}

// describe names a channel for a message: `input channel "x" ("/data/x")`.
func (c *taskChannels) describe(d *hostpath.Dir) string {
	kind := "output"
	for _, in := range c.inputs {
		if in == d {
			kind = "input"
		}
	}
	return fmt.Sprintf("%s channel %q (%q)", kind, c.names[d], d.Path())
}

// openChannels opens the task's input and output directories without
// following symlinks below the data roots; of an output that does not exist
// yet it opens the deepest existing directory (claimChannels creates the
// rest, once it knows the new directory overlaps nothing). late says the
// instance was resolved just now, while preparing, rather than at submit:
// its host paths were then resolved by name a moment ago, so the spec's own
// paths are opened instead and must lead to the same directories.
func (d *Daemon) openChannels(task *pcnodev1.Task, late bool) (c *taskChannels, err error) {
	inst, s := task.GetInstance(), task.GetSpec()
	c = &taskChannels{task: task.GetId(), names: map[*hostpath.Dir]string{}}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	open := func(kind string, i int, m *pcnodev1.Mount, binds []*pcnodev1.ChannelBinding) (*hostpath.Dir, []string, error) {
		field, p := fmt.Sprintf("%ss[%d].host_path", kind, i), m.GetHostPath()
		if late {
			for j, b := range binds {
				if b.GetName() == m.GetName() {
					field, p = fmt.Sprintf("spec.%ss[%d].host_path", kind, j), b.GetHostPath()
					break
				}
			}
		}
		var (
			dir     *hostpath.Dir
			missing []string
			err     error
		)
		if kind == "input" {
			dir, err = d.paths.Open(field, p, false)
		} else {
			dir, missing, err = d.paths.OpenDeepest(field, p)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s channel %q: %w", kind, m.GetName(), err)
		}
		if got := path.Join(append([]string{dir.Path()}, missing...)...); late && got != m.GetHostPath() {
			dir.Close()
			return nil, nil, fmt.Errorf("%s channel %q: %s: path %q led to %q when the template was resolved but opens %q now: %w",
				kind, m.GetName(), field, p, m.GetHostPath(), got, hostpath.ErrChanged)
		}
		c.names[dir] = m.GetName()
		return dir, missing, nil
	}
	for i, m := range inst.GetInputs() {
		dir, _, err := open("input", i, m, s.GetInputs())
		if err != nil {
			return nil, err
		}
		c.inputs = append(c.inputs, dir)
	}
	for i, m := range inst.GetOutputs() {
		dir, missing, err := open("output", i, m, s.GetOutputs())
		if err != nil {
			return nil, err
		}
		c.outputs = append(c.outputs, dir)
		c.missing = append(c.missing, missing)
	}
	return c, nil
}

// claimChannels refuses c when one of its outputs is, contains or lies
// inside another of its channels, or any channel of another task that is
// preparing or running, compared on the opened objects as they are now
// (device and inode of each directory and its ancestors). Outputs that do
// not exist yet are checked through their deepest existing directory (a
// new directory can only lie inside something) and then created from it.
// Otherwise it registers c as the task's until dropChannels; checks,
// creation and registration happen under one lock, so two tasks cannot
// both pass.
func (d *Daemon) claimChannels(c *taskChannels) error {
	return d.chans.claim(c, c.claimAgainst)
}

// claimAgainst is claimChannels' check of c against the registered
// channels of every task (channelTable.claim calls it under its lock),
// creating c's missing outputs once they pass.
func (c *taskChannels) claimAgainst(registered map[string]*taskChannels) error {
	anc := map[*hostpath.Dir][]hostpath.FileID{}
	ancestors := func(dir *hostpath.Dir) ([]hostpath.FileID, error) {
		if a, ok := anc[dir]; ok {
			return a, nil
		}
		a, err := dir.Ancestors()
		if err != nil {
			return nil, err
		}
		anc[dir] = a
		return a, nil
	}
	type other struct {
		dir  *hostpath.Dir
		desc string
	}
	// others are the channels an output must keep clear of: this task's
	// (existing ones; outputs once created) and every other task's.
	others := func(self int) []other {
		var out []other
		for _, in := range c.inputs {
			out = append(out, other{in, c.describe(in)})
		}
		for j, o := range c.outputs {
			if j != self && len(c.missing[j]) == 0 {
				out = append(out, other{o, c.describe(o)})
			}
		}
		for _, tc := range registered {
			if tc.task == c.task {
				continue
			}
			for _, x := range append(append([]*hostpath.Dir(nil), tc.inputs...), tc.outputs...) {
				out = append(out, other{x, tc.describe(x) + " of task " + tc.task + ", which is running"})
			}
		}
		return out
	}
	check := func(i int, creating bool) error {
		out := c.outputs[i]
		oa, err := ancestors(out)
		if err != nil {
			return fmt.Errorf("output channel %q: %w", c.names[out], err)
		}
		desc := c.describe(out)
		if creating {
			desc = fmt.Sprintf("output channel %q (%q, to be created)", c.names[out], path.Join(append([]string{out.Path()}, c.missing[i]...)...))
		}
		for _, x := range others(i) {
			xa, err := ancestors(x.dir)
			if errors.Is(err, hostpath.ErrChanged) {
				continue // removed or moved out of the data roots: nothing left to protect
			}
			if err != nil {
				return fmt.Errorf("%s: %w", x.desc, err)
			}
			why := hostpath.Overlap(oa, xa)
			if creating {
				// The new directory would lie below out, which is or lies
				// inside x; it cannot contain anything yet.
				if why == "" || why == "contains" {
					continue
				}
				why = "would lie inside"
			}
			if why != "" {
				return fmt.Errorf("%s %s %s; outputs are emptied before a run", desc, why, x.desc)
			}
		}
		return nil
	}
	for i := range c.outputs {
		if len(c.missing[i]) == 0 {
			if err := check(i, false); err != nil {
				return err
			}
		}
	}
	for i := range c.outputs {
		if len(c.missing[i]) == 0 {
			continue
		}
		if err := check(i, true); err != nil {
			return err
		}
		created, err := c.outputs[i].Create(c.missing[i])
		if err != nil {
			return fmt.Errorf("output channel %q: %w", c.names[c.outputs[i]], err)
		}
		c.names[created] = c.names[c.outputs[i]]
		delete(c.names, c.outputs[i])
		c.outputs[i].Close()
		c.outputs[i], c.missing[i] = created, nil
	}
	return nil
}

// registerChannels records the channels of a task re-attached after a
// restart, without checks: the task is already running.
func (d *Daemon) registerChannels(c *taskChannels) { d.chans.register(c) }

// taskChannelsOf returns the registered channels of task id, or nil.
func (d *Daemon) taskChannelsOf(id string) *taskChannels { return d.chans.get(id) }

// dropChannels forgets task id's channels and closes their descriptors.
func (d *Daemon) dropChannels(id string) {
	d.chans.remove(id).close()
}

// stageChannels bind-mounts each of the task's opened directories below
// the staging directory and returns the container's mounts with those
// staging paths as sources: inputs read-only, then outputs. The caller
// calls unstage when the container has started or failed to.
func (d *Daemon) stageChannels(task *pcnodev1.Task) ([]runtime.Mount, error) {
	c := d.taskChannelsOf(task.GetId())
	inst := task.GetInstance()
	if c == nil || len(c.inputs) != len(inst.GetInputs()) || len(c.outputs) != len(inst.GetOutputs()) {
		return nil, fmt.Errorf("the task's host directories were not opened")
	}
	var mounts []runtime.Mount
	for i, m := range inst.GetInputs() {
		src, err := d.staging.Mount(task.GetId(), fmt.Sprintf("in%d", i), c.inputs[i])
		if err != nil {
			return nil, fmt.Errorf("input channel %q: %w", m.GetName(), err)
		}
		mounts = append(mounts, runtime.Mount{Source: src, Destination: m.GetMountedPath(), ReadOnly: true})
	}
	for i, m := range inst.GetOutputs() {
		src, err := d.staging.Mount(task.GetId(), fmt.Sprintf("out%d", i), c.outputs[i])
		if err != nil {
			return nil, fmt.Errorf("output channel %q: %w", m.GetName(), err)
		}
		mounts = append(mounts, runtime.Mount{Source: src, Destination: m.GetMountedPath()})
	}
	return mounts, nil
}

// unstage removes the task's staging mounts.
func (d *Daemon) unstage(id string) {
	if err := d.staging.Release(id); err != nil {
		d.log.Warn("removing staging mounts", "task", id, "err", err)
	}
}

// openOutput re-opens output channel i of task for its manifest, without
// following symlinks, and refuses a directory other than the one the task
// had (when the daemon still holds that one).
func (d *Daemon) openOutput(task *pcnodev1.Task, i int) (*hostpath.Dir, error) {
	m := task.GetInstance().GetOutputs()[i]
	dir, err := d.paths.Open(fmt.Sprintf("outputs[%d].host_path", i), m.GetHostPath(), false)
	if err != nil {
		return nil, err
	}
	if c := d.taskChannelsOf(task.GetId()); c != nil && i < len(c.outputs) && c.outputs[i].ID() != dir.ID() {
		dir.Close()
		return nil, fmt.Errorf("outputs[%d].host_path: path %q is no longer the directory the task wrote to (it was replaced while the task ran): %w",
			i, m.GetHostPath(), hostpath.ErrChanged)
	}
	return dir, nil
}

// withOutputRoot runs f on output channel i of task, opened by openOutput
// and as an os.Root on that descriptor; both are closed when f returns.
func (d *Daemon) withOutputRoot(task *pcnodev1.Task, i int, f func(*hostpath.Dir, *os.Root) error) error {
	dir, err := d.openOutput(task, i)
	if err != nil {
		return err
	}
	defer dir.Close()
	root, err := dir.OpenRoot()
	if err != nil {
		return err
	}
	defer root.Close()
	return f(dir, root)
}

// reopenChannels opens the channels of a task re-attached after a restart
// (no outputs are created), so that later tasks are checked against them
// and its manifest against them. A channel that cannot be opened is logged
// and left out.
func (d *Daemon) reopenChannels(task *pcnodev1.Task) {
	c := &taskChannels{task: task.GetId(), names: map[*hostpath.Dir]string{}}
	for i, m := range task.GetInstance().GetInputs() {
		dir, err := d.paths.Open(fmt.Sprintf("inputs[%d].host_path", i), m.GetHostPath(), false)
		if err != nil {
			d.log.Warn("re-opening input channel of a running task", "task", task.GetId(), "channel", m.GetName(), "err", err)
			continue
		}
		c.names[dir] = m.GetName()
		c.inputs = append(c.inputs, dir)
	}
	for i, m := range task.GetInstance().GetOutputs() {
		dir, err := d.paths.Open(fmt.Sprintf("outputs[%d].host_path", i), m.GetHostPath(), false)
		if err != nil {
			d.log.Warn("re-opening output channel of a running task", "task", task.GetId(), "channel", m.GetName(), "err", err)
			// Outputs are indexed as in the instance: keep all or none.
			for _, o := range c.outputs {
				o.Close()
			}
			c.outputs = nil
			break
		}
		c.names[dir] = m.GetName()
		c.outputs = append(c.outputs, dir)
	}
	d.registerChannels(c)
}
