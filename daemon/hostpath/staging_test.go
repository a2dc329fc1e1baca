package hostpath

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// needMounts skips t unless it runs as root (staging makes bind mounts).
func needMounts(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes bind mounts (run as root, as make test does)")
	}
}

// newStaging returns a Staging in a fresh directory, swept again when t
// ends so that no mount outlives the test.
func newStaging(t *testing.T) *Staging {
	t.Helper()
	s, err := NewStaging(filepath.Join(t.TempDir(), "staging"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Sweep(); err != nil {
			t.Errorf("Sweep at the end: %v", err)
		}
		_ = unix.Unmount(s.Dir(), unix.MNT_DETACH)
	})
	return s
}

func TestStagingMountsTheOpenedDirectory(t *testing.T) {
	needMounts(t)
	tr := newTree(t)
	pol, err := New([]string{tr.data})
	if err != nil {
		t.Fatal(err)
	}
	defer pol.Close()
	s := newStaging(t)
	mustMkdir(t, filepath.Join(tr.data, "job/out"))
	if err := os.WriteFile(filepath.Join(tr.data, "job/out/marker"), []byte("real"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := pol.Open("f", filepath.Join(tr.data, "job/out"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	// Swapped after the open, before the mount: the mount still shows
	// what was opened.
	if err := os.Rename(filepath.Join(tr.data, "job"), filepath.Join(tr.data, "job.moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(tr.base, "outside"), filepath.Join(tr.data, "job")); err != nil {
		t.Fatal(err)
	}
	mustMkdir(t, filepath.Join(tr.base, "outside/out"))

	p, err := s.Mount("task1", "out0", d)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(s.Dir(), "task1", "out0"); p != want {
		t.Errorf("Mount = %q, want %q", p, want)
	}
	got, err := os.ReadFile(filepath.Join(p, "marker"))
	if err != nil || string(got) != "real" {
		t.Errorf("staging mount shows marker = %q, %v, want the opened directory's %q", got, err, "real")
	}
	if err := os.WriteFile(filepath.Join(p, "written"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tr.data, "job.moved/out/written")); err != nil {
		t.Errorf("write through the staging mount did not reach the opened directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tr.base, "outside/out/written")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("write through the staging mount reached the decoy: %v", err)
	}

	// The staging directory is a private mount while in use.
	mounts, err := mountsBelow(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(mounts, s.Dir()) || !slices.Contains(mounts, p) {
		t.Errorf("mounts below %s = %q, want the staging directory and %s", s.Dir(), mounts, p)
	}

	if err := s.Release("task1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release("task1"); err != nil {
		t.Errorf("second Release = %v, want nil (idempotent)", err)
	}
	mounts, err = mountsBelow(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 0 {
		t.Errorf("mounts below %s after Release = %q, want none", s.Dir(), mounts)
	}
	if _, err := os.Lstat(filepath.Join(s.Dir(), "task1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("group directory after Release: %v, want removed", err)
	}
	// The data is where it was.
	if _, err := os.Stat(filepath.Join(tr.data, "job.moved/out/marker")); err != nil {
		t.Errorf("Release touched the data: %v", err)
	}
}

// TestStagingSweep: mounts a crashed daemon left are unmounted at the next
// start, and the data they showed is not removed.
func TestStagingSweep(t *testing.T) {
	needMounts(t)
	tr := newTree(t)
	pol, err := New([]string{tr.data})
	if err != nil {
		t.Fatal(err)
	}
	defer pol.Close()
	dir := filepath.Join(t.TempDir(), "staging")
	s, err := NewStaging(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(s.Dir(), unix.MNT_DETACH) })
	d, err := pol.Open("f", filepath.Join(tr.data, "in"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, g := range []string{"a", "b"} {
		if _, err := s.Mount(g, "in0", d); err != nil {
			t.Fatal(err)
		}
	}
	// A new daemon (a new Staging over the same directory) sweeps.
	s2, err := NewStaging(dir)
	if err != nil {
		t.Fatalf("NewStaging over stale mounts = %v", err)
	}
	mounts, err := mountsBelow(s2.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 0 {
		t.Errorf("mounts after the sweep = %q, want none", mounts)
	}
	entries, err := os.ReadDir(s2.Dir())
	if err != nil || len(entries) != 0 {
		t.Errorf("staging directory after the sweep holds %v (%v), want nothing", entries, err)
	}
	if _, err := os.Stat(filepath.Join(tr.data, "in/sub")); err != nil {
		t.Errorf("the sweep removed data the mount showed: %v", err)
	}
}

func TestStagingRefusesBadNames(t *testing.T) {
	needMounts(t)
	s := newStaging(t)
	for _, g := range []string{"", ".", "..", "a/b", "x\x00"} {
		if _, err := s.Mount(g, "in0", &Dir{}); err == nil {
			t.Errorf("Mount(%q, in0) = nil error, want refusal", g)
		}
		if _, err := s.Mount("t", g, &Dir{}); err == nil {
			t.Errorf("Mount(t, %q) = nil error, want refusal", g)
		}
	}
}
