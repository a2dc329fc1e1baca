package daemon

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pcnode/pcnode/daemon/spec"
)

// inputFS is what scale rules measure a task's inputs on: each input
// directory opened once from its data root without following symlinks
// (hostpath.Policy.Open) and read through an os.Root on that descriptor, so
// sizes come from the directory that was checked, never from whatever its
// name points at later, and nothing outside it is reached. A name outside
// every opened input is refused.
type inputFS struct {
	dirs  []string // resolved host paths of the inputs, longest first
	roots map[string]*os.Root
}

var _ spec.SizeFS = (*inputFS)(nil)

// openInputFS opens the inputs of t, whose host paths specTask resolved.
// The caller closes it.
func (d *Daemon) openInputFS(t *spec.Task) (*inputFS, error) {
	f := &inputFS{roots: map[string]*os.Root{}}
	var p problems
	for i, in := range t.Inputs {
		if _, ok := f.roots[in.HostPath]; ok {
			continue
		}
		dir, err := d.paths.Open(fmt.Sprintf("spec.inputs[%d].host_path", i), in.HostPath, false)
		if err != nil {
			p.addErr(err)
			continue
		}
		root, err := dir.OpenRoot()
		dir.Close()
		if err != nil {
			p.addErr(err)
			continue
		}
		f.roots[in.HostPath] = root
		f.dirs = append(f.dirs, in.HostPath)
	}
	if len(p) > 0 {
		f.Close()
		return nil, invalid(p)
	}
	slices.SortFunc(f.dirs, func(a, b string) int { return len(b) - len(a) })
	return f, nil
}

// Close closes every opened input.
func (f *inputFS) Close() {
	for _, r := range f.roots {
		r.Close()
	}
}

// lookup returns the opened input holding the host path name and name
// relative to it.
func (f *inputFS) lookup(name string) (*os.Root, string, error) {
	for _, dir := range f.dirs {
		if name == dir {
			return f.roots[dir], ".", nil
		}
		if rest, ok := strings.CutPrefix(name, dir+"/"); ok {
			return f.roots[dir], filepath.Clean(rest), nil
		}
	}
	return nil, "", &fs.PathError{Op: "measure", Path: name, Err: fs.ErrNotExist}
}

// Lstat is os.Lstat below an opened input.
func (f *inputFS) Lstat(name string) (fs.FileInfo, error) {
	r, rel, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	return r.Lstat(rel)
}

// ReadDir is os.ReadDir below an opened input: entries sorted by name,
// symlinks reported as such.
func (f *inputFS) ReadDir(name string) ([]fs.DirEntry, error) {
	r, rel, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	dir, err := r.Open(rel)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	entries, err := dir.ReadDir(-1)
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}
