package hostpath

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpen walks the tree of newTree with a symlink in each position: Open
// never follows one, wherever it points, and creates nothing through one.
func TestOpen(t *testing.T) {
	tr := newTree(t)
	b := func(rel string) string { return tr.base + "/" + rel }
	for _, d := range []string{"data/a/b/c", "data/a/other"} {
		mustMkdir(t, b(d))
	}
	for name, target := range map[string]string{
		"data/a/link-b":     "b",             // relative, inside
		"data/a/b/link-c":   b("data/a/b/c"), // absolute, inside
		"data/a/b/link-out": b("outside"),
	} {
		if err := os.Symlink(target, b(name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		roots   []string
		path    string
		create  bool
		want    string // Path(), relative to base
		wantErr error
	}{
		{name: "plain", path: b("data/a/b/c"), want: "data/a/b/c"},
		{name: "one below root", path: b("data/a"), want: "data/a"},
		{name: "create missing", path: b("data/a/new/deeper"), create: true, want: "data/a/new/deeper"},
		{name: "create existing", path: b("data/a/b"), create: true, want: "data/a/b"},
		{name: "missing without create", path: b("data/a/absent"), wantErr: ErrNotExist},

		{name: "symlink first element", path: b("data/link-in"), wantErr: ErrSymlink},
		{name: "symlink first element below", path: b("data/link-in/sub"), wantErr: ErrSymlink},
		{name: "symlink middle element", path: b("data/a/link-b/c"), wantErr: ErrSymlink},
		{name: "symlink last element inside", path: b("data/a/b/link-c"), wantErr: ErrSymlink},
		{name: "symlink last element outside", path: b("data/a/b/link-out"), wantErr: ErrSymlink},
		{name: "symlink to slash", path: b("data/link-slash/etc"), wantErr: ErrSymlink},
		{name: "symlink to root", path: b("data/link-root/in"), wantErr: ErrSymlink},
		{name: "dangling symlink", path: b("data/link-dangling"), wantErr: ErrSymlink},
		{name: "loop", path: b("data/link-loop"), wantErr: ErrSymlink},
		{name: "create through symlink", path: b("data/link-out/new"), create: true, wantErr: ErrSymlink},
		{name: "create through dangling symlink", path: b("data/link-dangling/new"), create: true, wantErr: ErrSymlink},
		{name: "create at dangling symlink", path: b("data/link-dangling"), create: true, wantErr: ErrSymlink},
		{name: "file", path: b("data/file.txt"), wantErr: ErrNotDirectory},
		{name: "below file", path: b("data/file.txt/x"), create: true, wantErr: ErrNotDirectory},
		{name: "symlink to file", path: b("data/link-file"), wantErr: ErrSymlink},

		{name: "outside", path: b("outside/secret"), wantErr: ErrOutsideRoots},
		{name: "prefix confusion", path: b("data2/x"), wantErr: ErrOutsideRoots},
		{name: "data root itself", path: b("data"), wantErr: ErrOutsideRoots},
		{name: "dotdot", path: b("data/a/../../outside"), wantErr: ErrNotClean},
		{name: "relative", path: "data/a", wantErr: ErrNotAbsolute},

		// The data root is opened once in New, following the operator's
		// symlink then; paths may name it either way.
		{name: "symlinked root via link", roots: []string{"datalink"}, path: b("datalink/in/sub"), want: "data/in/sub"},
		{name: "symlinked root via target", roots: []string{"datalink"}, path: b("data/in/sub"), want: "data/in/sub"},
		{name: "symlinked root itself", roots: []string{"datalink"}, path: b("datalink"), wantErr: ErrOutsideRoots},
		{name: "overlapping roots", roots: []string{"data", "data/a"}, path: b("data/a/b"), want: "data/a/b"},
		{name: "overlapping roots symlink above inner", roots: []string{"data", "data/a/b"}, path: b("data/a/b/link-c"), wantErr: ErrSymlink},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roots := tt.roots
			if roots == nil {
				roots = []string{"data"}
			}
			var abs []string
			for _, r := range roots {
				abs = append(abs, b(r))
			}
			pol, err := New(abs)
			if err != nil {
				t.Fatal(err)
			}
			defer pol.Close()
			const field = "outputs[0].host_path"
			d, err := pol.Open(field, tt.path, tt.create)
			if tt.wantErr != nil {
				var pe *Error
				if !errors.Is(err, tt.wantErr) || !errors.As(err, &pe) || pe.Field != field || pe.Path != tt.path {
					t.Fatalf("Open(%q, %v) = %v, want an *Error for %s wrapping %v", tt.path, tt.create, err, field, tt.wantErr)
				}
				t.Logf("Open(%q) = %v", tt.path, err)
				return
			}
			if err != nil {
				t.Fatalf("Open(%q, %v) = %v", tt.path, tt.create, err)
			}
			defer d.Close()
			if d.Path() != b(tt.want) || d.Field() != field {
				t.Errorf("Open(%q) = %q (%s), want %q (%s)", tt.path, d.Path(), d.Field(), b(tt.want), field)
			}
			fi, err := os.Lstat(b(tt.want))
			if err != nil {
				t.Fatal(err)
			}
			if fileIDOf(fi) != d.ID() {
				t.Errorf("Open(%q).ID() = %v, want %v (%s)", tt.path, d.ID(), fileIDOf(fi), tt.want)
			}
		})
	}
	// Nothing was created outside or through a symlink.
	for _, p := range []string{"outside/new", "nowhere", "data/in/new"} {
		if _, err := os.Lstat(b(p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Lstat(%q) after the Open tests = %v, want not exist", p, err)
		}
	}
}

// TestOpenThenSwap: once opened, the directory is used through its
// descriptor: replacing its name (or a parent's) by a symlink afterwards
// changes nothing that goes through the Dir, and a fresh Open refuses.
func TestOpenThenSwap(t *testing.T) {
	tr := newTree(t)
	pol, err := New([]string{tr.data})
	if err != nil {
		t.Fatal(err)
	}
	defer pol.Close()
	mustMkdir(t, filepath.Join(tr.data, "job/out"))
	d, err := pol.Open("f", filepath.Join(tr.data, "job/out"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	want := d.ID()

	// The attacker swaps "job" for a symlink to the outside.
	if err := os.Rename(filepath.Join(tr.data, "job"), filepath.Join(tr.data, "job.moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(tr.base, "outside"), filepath.Join(tr.data, "job")); err != nil {
		t.Fatal(err)
	}
	mustMkdir(t, filepath.Join(tr.base, "outside/out"))

	root, err := d.OpenRoot()
	if err != nil {
		t.Fatalf("OpenRoot after the swap = %v", err)
	}
	if err := root.WriteFile("result", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	root.Close()
	if _, err := os.Stat(filepath.Join(tr.data, "job.moved/out/result")); err != nil {
		t.Errorf("write through the Dir after the swap did not land in the opened directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tr.base, "outside/out/result")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("write through the Dir after the swap reached the symlink's target: %v", err)
	}
	if d.ID() != want {
		t.Errorf("ID changed: %v, want %v", d.ID(), want)
	}
	if _, err := pol.Open("f", filepath.Join(tr.data, "job/out"), true); !errors.Is(err, ErrSymlink) {
		t.Errorf("Open after the swap = %v, want %v", err, ErrSymlink)
	}
	// Ancestors follow the directory where it is now.
	anc, err := d.Ancestors()
	if err != nil {
		t.Fatal(err)
	}
	moved, err := pol.Open("f", filepath.Join(tr.data, "job.moved"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer moved.Close()
	if len(anc) < 3 || anc[0] != want || anc[1] != moved.ID() {
		t.Errorf("Ancestors() = %v, want %v, then %v (job.moved), ...", anc, want, moved.ID())
	}
}

func TestAncestorsAndOverlap(t *testing.T) {
	tr := newTree(t)
	pol, err := New([]string{tr.data})
	if err != nil {
		t.Fatal(err)
	}
	defer pol.Close()
	open := func(rel string) *Dir {
		t.Helper()
		d, err := pol.Open("f", filepath.Join(tr.data, rel), true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	anc := func(d *Dir) []FileID {
		t.Helper()
		a, err := d.Ancestors()
		if err != nil {
			t.Fatalf("Ancestors(%q) = %v", d.Path(), err)
		}
		return a
	}
	a, ab, abc, x := open("a"), open("a/b"), open("a/b/c"), open("x")
	tests := []struct {
		p, q *Dir
		want string
	}{
		{a, a, "is the same directory as"},
		{abc, a, "lies inside"},
		{a, abc, "contains"},
		{ab, abc, "contains"},
		{x, a, ""},
		{abc, x, ""},
	}
	for _, tt := range tests {
		if got := Overlap(anc(tt.p), anc(tt.q)); got != tt.want {
			t.Errorf("Overlap(%q, %q) = %q, want %q", tt.p.Path(), tt.q.Path(), got, tt.want)
		}
	}
	// Moving x below a/b after both were opened: the overlap is seen on
	// the objects as they are now.
	if err := os.Rename(filepath.Join(tr.data, "x"), filepath.Join(tr.data, "a/b/x")); err != nil {
		t.Fatal(err)
	}
	if got := Overlap(anc(ab), anc(x)); got != "contains" {
		t.Errorf("Overlap(a/b, x moved into a/b) = %q, want contains", got)
	}
	// Moved out of the data root, or removed: ErrChanged.
	if err := os.Rename(filepath.Join(tr.data, "a/b/x"), filepath.Join(tr.base, "outside/x")); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Ancestors(); !errors.Is(err, ErrChanged) {
		t.Errorf("Ancestors of a directory moved out of the data root = %v, want %v", err, ErrChanged)
	}
	if err := os.Remove(filepath.Join(tr.data, "a/b/c")); err != nil {
		t.Fatal(err)
	}
	if _, err := abc.Ancestors(); !errors.Is(err, ErrChanged) {
		t.Errorf("Ancestors of a removed directory = %v, want %v", err, ErrChanged)
	}
}

// TestOpenRace swaps a path component between a directory and a symlink
// to the outside while Open runs: every Open either refuses or returns the
// real directory, never the outside one.
func TestOpenRace(t *testing.T) {
	tr := newTree(t)
	pol, err := New([]string{tr.data})
	if err != nil {
		t.Fatal(err)
	}
	defer pol.Close()
	mustMkdir(t, filepath.Join(tr.data, "race/out"))
	mustMkdir(t, filepath.Join(tr.base, "outside/out"))
	if err := os.Symlink(filepath.Join(tr.base, "outside"), filepath.Join(tr.data, "race.alt")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(tr.base, "outside/out"))
	if err != nil {
		t.Fatal(err)
	}
	outside := fileIDOf(fi)
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			if err := unix.Renameat2(unix.AT_FDCWD, filepath.Join(tr.data, "race"), unix.AT_FDCWD, filepath.Join(tr.data, "race.alt"), unix.RENAME_EXCHANGE); err != nil {
				t.Error(err)
				done <- n
				return
			}
			n++
		}
	}()
	opened, refused := 0, 0
	for range 3000 {
		d, err := pol.Open("f", filepath.Join(tr.data, "race/out/new"), true)
		if err != nil {
			if !errors.Is(err, ErrSymlink) && !errors.Is(err, ErrNotExist) {
				t.Errorf("Open during swaps = %v, want success or %v", err, ErrSymlink)
			}
			refused++
			continue
		}
		anc, aerr := d.Ancestors()
		if aerr == nil && len(anc) > 1 && anc[1] == outside {
			t.Errorf("Open during swaps returned a directory inside the outside decoy")
		}
		d.Close()
		opened++
	}
	close(stop)
	swaps := <-done
	t.Logf("%d swaps; %d opens succeeded, %d refused", swaps, opened, refused)
	if _, err := os.Lstat(filepath.Join(tr.base, "outside/out/new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a directory was created in the outside decoy: %v", err)
	}
}

func TestPolicyClose(t *testing.T) {
	tr := newTree(t)
	pol, err := New([]string{tr.data})
	if err != nil {
		t.Fatal(err)
	}
	if err := pol.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pol.Open("f", filepath.Join(tr.data, "in"), false); !errors.Is(err, ErrOutsideRoots) {
		t.Errorf("Open after Close = %v, want %v", err, ErrOutsideRoots)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:               "/plain",
		`/a\040b`:              "/a b",
		`/tab\011x\012y`:       "/tab\tx\ny",
		`/back\134slash`:       `/back\slash`,
		`/bad\09`:              `/bad\09`,
		`/end\04`:              `/end\04`,
		strings.Repeat("x", 3): "xxx",
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzOpen: whatever the path, Open either refuses it with an *Error or
// returns a directory strictly below the data root, reached without a
// symlink, whose ID is the object at its Path. Paths starting with "/" are
// taken relative to the test tree. Nothing is created (create is false).
func FuzzOpen(f *testing.F) {
	tr := newTree(f)
	pol, err := New([]string{tr.data})
	if err != nil {
		f.Fatal(err)
	}
	defer pol.Close()
	for _, s := range []string{"", "/", "/data/in", "/data/in/sub", "/data/link-in/sub", "/data/link-out", "/data/../outside",
		"/data//in", "/data/file.txt", "/datalink/in", "/data/link-loop/x", "/data2/x", "/data/in\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if strings.HasPrefix(p, "/") {
			p = tr.base + p
		}
		d, err := pol.Open("f", p, false)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Open(%q) = %v, want an *Error", p, err)
			}
			return
		}
		defer d.Close()
		if !below(d.Path(), tr.data) {
			t.Fatalf("Open(%q).Path() = %q, not below %q", p, d.Path(), tr.data)
		}
		if res, err := filepath.EvalSymlinks(d.Path()); err != nil || res != d.Path() {
			t.Fatalf("Open(%q).Path() = %q resolves to %q (%v): a symlink was followed", p, d.Path(), res, err)
		}
		fi, err := os.Lstat(d.Path())
		if err != nil || fileIDOf(fi) != d.ID() {
			t.Fatalf("Open(%q).ID() = %v, but %q is %v (%v)", p, d.ID(), d.Path(), fi, err)
		}
	})
}

// TestOpenDeepestThenCreate: OpenDeepest stops at the deepest existing
// directory and creates nothing; Create makes the rest from that descriptor
// without following a symlink planted in between.
func TestOpenDeepestThenCreate(t *testing.T) {
	tr := newTree(t)
	pol, err := New([]string{tr.data})
	if err != nil {
		t.Fatal(err)
	}
	defer pol.Close()
	b := func(rel string) string { return filepath.Join(tr.base, rel) }
	for _, tc := range []struct {
		name, path, wantDir string
		wantRest            []string
		wantErr             error
	}{
		{name: "exists", path: b("data/in/sub"), wantDir: "data/in/sub"},
		{name: "one missing", path: b("data/in/new"), wantDir: "data/in", wantRest: []string{"new"}},
		{name: "below the root", path: b("data/new/a/b"), wantDir: "data", wantRest: []string{"new", "a", "b"}},
		{name: "through a symlink", path: b("data/link-in/new"), wantErr: ErrSymlink},
		{name: "at a dangling symlink", path: b("data/link-dangling/new"), wantErr: ErrSymlink},
		{name: "below a file", path: b("data/file.txt/new"), wantErr: ErrNotDirectory},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, rest, err := pol.OpenDeepest("f", tc.path)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("OpenDeepest(%q) = %v, want %v", tc.path, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if d.Path() != b(tc.wantDir) || strings.Join(rest, "/") != strings.Join(tc.wantRest, "/") {
				t.Errorf("OpenDeepest(%q) = %q, %q, want %q, %q", tc.path, d.Path(), rest, b(tc.wantDir), tc.wantRest)
			}
			if _, err := d.Ancestors(); err != nil {
				t.Errorf("Ancestors of %q = %v", d.Path(), err)
			}
		})
	}
	if _, err := os.Lstat(b("data/new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenDeepest created data/new: %v", err)
	}

	// Created as asked.
	d, rest, err := pol.OpenDeepest("f", b("data/in/made/here"))
	if err != nil {
		t.Fatal(err)
	}
	made, err := d.Create(rest)
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	made.Close()
	if fi, err := os.Lstat(b("data/in/made/here")); err != nil || !fi.IsDir() {
		t.Errorf("Create: %v", err)
	}

	// A symlink planted where the first missing element goes.
	d, rest, err = pol.OpenDeepest("f", b("data/in/planted/x"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := os.Symlink(b("outside"), b("data/in/planted")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create(rest); !errors.Is(err, ErrSymlink) {
		t.Errorf("Create through a planted symlink = %v, want %v", err, ErrSymlink)
	}
	if _, err := os.Lstat(b("outside/x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Create made %s through the symlink: %v", b("outside/x"), err)
	}
	// The parent was moved away meanwhile: Create still works below the
	// opened directory, wherever it is now.
	d2, rest, err := pol.OpenDeepest("f", b("data/in/sub/late"))
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if err := os.Rename(b("data/in/sub"), b("data/in/sub-moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(b("outside"), b("data/in/sub")); err != nil {
		t.Fatal(err)
	}
	late, err := d2.Create(rest)
	if err != nil {
		t.Fatal(err)
	}
	late.Close()
	if _, err := os.Stat(b("data/in/sub-moved/late")); err != nil {
		t.Errorf("Create did not create below the opened directory: %v", err)
	}
	if _, err := os.Lstat(b("outside/late")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Create followed the name: %v", err)
	}
}
