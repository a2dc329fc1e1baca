package daemon

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pcnode/pcnode/daemon/spec"
)

// TestInputFSMeasuresWhatWasOpened: scale rules read sizes through the
// input opened at resolve time; a name swapped for a symlink afterwards, a
// symlink inside the input that leaves it, and names outside every input
// reach nothing outside.
func TestInputFSMeasuresWhatWasOpened(t *testing.T) {
	d, root := testDaemon(t, "in/sub", "decoy")
	defer d.paths.Close()
	outside := t.TempDir()
	write := func(p string, n int) {
		t.Helper()
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in := filepath.Join(root, "in")
	write(filepath.Join(in, "a.txt"), 10)
	write(filepath.Join(in, "sub/b.txt"), 20)
	write(filepath.Join(root, "decoy/secret"), 1000)
	write(filepath.Join(outside, "secret"), 5000)
	if err := os.Symlink(outside, filepath.Join(in, "out-link")); err != nil {
		t.Fatal(err)
	}

	fsys, err := d.openInputFS(&spec.Task{Inputs: []spec.Binding{{Name: "in", HostPath: in}}})
	if err != nil {
		t.Fatalf("openInputFS = %v", err)
	}
	defer fsys.Close()

	// The input's name now points at the decoy: the opened directory is
	// still what is measured.
	if err := os.Rename(in, filepath.Join(root, "in-moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "decoy"), in); err != nil {
		t.Fatal(err)
	}
	entries, err := fsys.ReadDir(in)
	if err != nil {
		t.Fatalf("ReadDir(%q) = %v", in, err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"a.txt", "out-link", "sub"}; !slices.Equal(names, want) {
		t.Errorf("ReadDir(%q) = %q, want %q (the opened directory, sorted)", in, names, want)
	}
	if fi, err := fsys.Lstat(filepath.Join(in, "sub/b.txt")); err != nil || fi.Size() != 20 {
		t.Errorf("Lstat(sub/b.txt) = %v, %v, want 20 bytes", fi, err)
	}
	if fi, err := fsys.Lstat(filepath.Join(in, "out-link")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(out-link) = %v, %v, want the symlink itself", fi, err)
	}
	if fi, err := fsys.Lstat(filepath.Join(in, "out-link/secret")); err == nil {
		t.Errorf("Lstat(out-link/secret) = %d bytes, want an error: the symlink leaves the input", fi.Size())
	}
	for _, name := range []string{filepath.Join(root, "decoy/secret"), filepath.Join(outside, "secret"), in + "x/a.txt"} {
		if _, err := fsys.Lstat(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Lstat(%q) = %v, want %v: not below an opened input", name, err, fs.ErrNotExist)
		}
	}
}

func TestOpenInputFSRefusesASymlink(t *testing.T) {
	d, root := testDaemon(t, "real")
	defer d.paths.Close()
	link := filepath.Join(root, "link")
	if err := os.Symlink(filepath.Join(root, "real"), link); err != nil {
		t.Fatal(err)
	}
	_, err := d.openInputFS(&spec.Task{Inputs: []spec.Binding{{Name: "in", HostPath: link}}})
	var inv *invalidError
	if !errors.As(err, &inv) {
		t.Fatalf("openInputFS(symlink) = %v, want an invalidError", err)
	}
}
