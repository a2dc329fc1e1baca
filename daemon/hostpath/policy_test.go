package hostpath

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// tree is a real directory tree for the policy tests:
//
//	base/
//	  data/               the data root
//	    in/sub/
//	    file.txt
//	    link-in       -> base/data/in          (absolute, stays inside)
//	    link-rel      -> in/sub                (relative, stays inside)
//	    link-out      -> base/outside          (escapes)
//	    link-up       -> ../outside            (relative, escapes)
//	    link-dangling -> base/nowhere
//	    link-file     -> file.txt
//	    link-loop     -> link-loop
//	    link-root     -> base/data             (the root itself)
//	    link-slash    -> /
//	  data2/x/            prefix confusion: not below data
//	  outside/secret/
//	  datalink        -> data                  (a symlinked data root)
type tree struct{ base, data string }

func newTree(t testing.TB) tree {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr := tree{base: base, data: filepath.Join(base, "data")}
	for _, d := range []string{"data/in/sub", "data2/x", "outside/secret"} {
		mustMkdir(t, filepath.Join(base, d))
	}
	if err := os.WriteFile(filepath.Join(tr.data, "file.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"data/link-in":       filepath.Join(base, "data/in"),
		"data/link-rel":      "in/sub",
		"data/link-out":      filepath.Join(base, "outside"),
		"data/link-up":       "../outside",
		"data/link-dangling": filepath.Join(base, "nowhere"),
		"data/link-file":     "file.txt",
		"data/link-loop":     "link-loop",
		"data/link-root":     tr.data,
		"data/link-slash":    "/",
		"datalink":           "data",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(base, name)); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func mustMkdir(t testing.TB, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	tr := newTree(t)
	// b joins without cleaning: the tests send unclean paths on purpose.
	b := func(rel string) string { return tr.base + "/" + rel }
	tests := []struct {
		name      string
		roots     []string // relative to base; default {"data"}
		path      string
		mustExist bool
		want      string // resolved, relative to base
		wantErr   error
	}{
		{name: "inside", path: b("data/in"), mustExist: true, want: "data/in"},
		{name: "inside nested", path: b("data/in/sub"), mustExist: true, want: "data/in/sub"},
		{name: "inside need not exist but does", path: b("data/in"), want: "data/in"},
		{name: "outside", path: b("outside/secret"), mustExist: true, wantErr: ErrOutsideRoots},
		{name: "outside system path", path: "/etc", mustExist: true, wantErr: ErrOutsideRoots},
		{name: "slash", path: "/", wantErr: ErrOutsideRoots},
		{name: "prefix confusion", path: b("data2/x"), mustExist: true, wantErr: ErrOutsideRoots},
		{name: "prefix confusion not existing", path: b("data2/new"), wantErr: ErrOutsideRoots},
		{name: "data root itself", path: b("data"), mustExist: true, wantErr: ErrOutsideRoots},

		{name: "dotdot escaping", path: b("data/in/../../outside"), mustExist: true, wantErr: ErrNotClean},
		{name: "dotdot staying inside", path: b("data/in/../in"), mustExist: true, wantErr: ErrNotClean},
		{name: "dotdot at end", path: b("data/in/.."), wantErr: ErrNotClean},
		{name: "dotdot from slash", path: "/.." + b("data/in"), wantErr: ErrNotClean},
		{name: "dot element", path: b("data/./in"), wantErr: ErrNotClean},
		{name: "trailing slash", path: b("data/in") + "/", wantErr: ErrNotClean},
		{name: "doubled slash", path: strings.Replace(b("data/in"), "/data/", "/data//", 1), wantErr: ErrNotClean},
		{name: "leading doubled slash", path: "/" + b("data/in"), wantErr: ErrNotClean},
		{name: "empty", path: "", wantErr: ErrNotClean},
		{name: "NUL byte", path: b("data/in") + "\x00/x", wantErr: ErrNotClean},
		{name: "too long", path: b("data/") + strings.Repeat("a/", MaxPathLen/2), wantErr: ErrNotClean},
		{name: "element too long", path: b("data/") + strings.Repeat("a", 300), wantErr: ErrNotClean},
		{name: "relative", path: "data/in", wantErr: ErrNotAbsolute},
		{name: "relative dotdot", path: "../etc", wantErr: ErrNotAbsolute},
		{name: "dot", path: ".", wantErr: ErrNotAbsolute},

		{name: "symlink inside to inside", path: b("data/link-in"), mustExist: true, want: "data/in"},
		{name: "relative symlink inside", path: b("data/link-rel"), mustExist: true, want: "data/in/sub"},
		{name: "below symlink inside", path: b("data/link-in/sub"), mustExist: true, want: "data/in/sub"},
		{name: "symlink pointing outside", path: b("data/link-out"), mustExist: true, wantErr: ErrOutsideRoots},
		{name: "below symlink pointing outside", path: b("data/link-out/secret"), mustExist: true, wantErr: ErrOutsideRoots},
		{name: "relative symlink escaping", path: b("data/link-up/secret"), mustExist: true, wantErr: ErrOutsideRoots},
		{name: "symlink to slash", path: b("data/link-slash/etc"), mustExist: true, wantErr: ErrOutsideRoots},
		{name: "symlink to the root", path: b("data/link-root"), mustExist: true, wantErr: ErrOutsideRoots},
		{name: "dangling symlink", path: b("data/link-dangling"), wantErr: ErrNotExist},
		{name: "below dangling symlink", path: b("data/link-dangling/out"), wantErr: ErrNotExist},
		{name: "symlink loop", path: b("data/link-loop"), mustExist: true, wantErr: ErrNotExist},
		{name: "below symlink loop", path: b("data/link-loop/x"), wantErr: ErrNotExist},

		{name: "output not existing", path: b("data/out/a/b"), want: "data/out/a/b"},
		{name: "output below existing", path: b("data/in/new"), want: "data/in/new"},
		{name: "output below symlink inside", path: b("data/link-in/new/deeper"), want: "data/in/new/deeper"},
		{name: "output below symlink outside", path: b("data/link-out/new"), wantErr: ErrOutsideRoots},
		{name: "output deep below symlink outside", path: b("data/link-out/new/a/b"), wantErr: ErrOutsideRoots},
		{name: "output outside", path: b("outside/new"), wantErr: ErrOutsideRoots},
		{name: "output below slash symlink", path: b("data/link-slash/newdir"), wantErr: ErrOutsideRoots},
		{name: "must exist but missing", path: b("data/missing"), mustExist: true, wantErr: ErrNotExist},
		{name: "must exist below missing", path: b("data/missing/x"), mustExist: true, wantErr: ErrNotExist},

		{name: "file instead of directory", path: b("data/file.txt"), mustExist: true, wantErr: ErrNotDirectory},
		{name: "file instead of output directory", path: b("data/file.txt"), wantErr: ErrNotDirectory},
		{name: "below a file", path: b("data/file.txt/x"), wantErr: ErrNotDirectory},
		{name: "symlink to file", path: b("data/link-file"), mustExist: true, wantErr: ErrNotDirectory},

		{name: "symlinked root via link", roots: []string{"datalink"}, path: b("datalink/in"), mustExist: true, want: "data/in"},
		{name: "symlinked root via target", roots: []string{"datalink"}, path: b("data/in"), mustExist: true, want: "data/in"},
		{name: "symlinked root output", roots: []string{"datalink"}, path: b("datalink/new"), want: "data/new"},
		{name: "symlinked root itself", roots: []string{"datalink"}, path: b("datalink"), mustExist: true, wantErr: ErrOutsideRoots},
		{name: "symlinked root prefix confusion", roots: []string{"datalink"}, path: b("data2/x"), mustExist: true, wantErr: ErrOutsideRoots},

		{name: "overlapping roots inner", roots: []string{"data", "data/in"}, path: b("data/in/sub"), mustExist: true, want: "data/in/sub"},
		{name: "overlapping roots outer", roots: []string{"data", "data/in"}, path: b("data/link-rel"), mustExist: true, want: "data/in/sub"},
		{name: "overlapping roots equal to inner", roots: []string{"data", "data/in"}, path: b("data/in"), mustExist: true, wantErr: ErrOutsideRoots},
		{name: "containing a root", roots: []string{"data", "data/in/sub"}, path: b("data/in"), mustExist: true, wantErr: ErrOutsideRoots},
		{name: "second root", roots: []string{"data", "outside"}, path: b("outside/secret"), mustExist: true, want: "outside/secret"},
		{name: "no roots", roots: []string{}, path: b("data/in"), mustExist: true, wantErr: ErrOutsideRoots},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roots := tt.roots
			if roots == nil {
				roots = []string{"data"}
			}
			abs := make([]string, len(roots))
			for i, r := range roots {
				abs[i] = b(r)
			}
			pol, err := New(abs)
			if err != nil {
				t.Fatalf("New(%q) = %v", abs, err)
			}
			const field = "outputs[out].host_path"
			got, err := pol.Check(field, tt.path, tt.mustExist)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Check(%q) = %q, %v, want error %v", tt.path, got, err, tt.wantErr)
				}
				var pe *Error
				if !errors.As(err, &pe) {
					t.Fatalf("Check(%q) error %v is a %T, want *Error", tt.path, err, err)
				}
				t.Logf("Check(%q) = %v", tt.path, err)
				if pe.Field != field || pe.Path != tt.path || pe.Reason == "" {
					t.Errorf("Check(%q) error = %+v, want field %q, path %q and a reason", tt.path, pe, field, tt.path)
				}
				if got != "" {
					t.Errorf("Check(%q) resolved = %q on error, want empty", tt.path, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Check(%q) = %v, want %q", tt.path, err, b(tt.want))
			}
			if got != b(tt.want) {
				t.Errorf("Check(%q) = %q, want %q", tt.path, got, b(tt.want))
			}
		})
	}
}

// TestCheckCreatesNothing: checking a path that need not exist leaves the
// file system as it was.
func TestCheckCreatesNothing(t *testing.T) {
	tr := newTree(t)
	pol, err := New([]string{tr.data})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		filepath.Join(tr.data, "new/a"),
		filepath.Join(tr.data, "link-out/new"),
		filepath.Join(tr.data, "link-dangling/x"),
	} {
		_, _ = pol.Check("f", p, false)
	}
	for _, p := range []string{
		filepath.Join(tr.data, "new"),
		filepath.Join(tr.base, "outside/new"),
		filepath.Join(tr.base, "nowhere"),
	} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Lstat(%q) after Check = %v, want not exist", p, err)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	tr := newTree(t)
	pol, err := New([]string{tr.data})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(tr.data, "link-out")
	_, err = pol.Check("inputs[0].host_path", p, true)
	want := `inputs[0].host_path: path "` + p + `" resolves, through a symlink, outside the data roots`
	if err == nil || err.Error() != want {
		t.Errorf("Check(%q) = %v, want %q", p, err, want)
	}
	// The caller is not told where the symlink leads.
	if strings.Contains(err.Error(), "outside/") || strings.HasSuffix(err.Error(), filepath.Join(tr.base, "outside")) {
		t.Errorf("Check(%q) error %q reveals the symlink target", p, err)
	}
}

func TestNew(t *testing.T) {
	tr := newTree(t)
	b := func(rel string) string { return filepath.Join(tr.base, rel) }
	slashLink := filepath.Join(tr.base, "slash")
	if err := os.Symlink("/", slashLink); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		roots   []string
		want    []string
		wantErr bool
	}{
		{name: "plain", roots: []string{b("data")}, want: []string{b("data")}},
		{name: "symlink resolved", roots: []string{b("datalink")}, want: []string{b("data")}},
		{name: "unclean cleaned", roots: []string{b("data") + "/"}, want: []string{b("data")}},
		{name: "overlapping", roots: []string{b("data"), b("data/in")}, want: []string{b("data"), b("data/in")}},
		{name: "none", roots: nil, want: []string{}},
		{name: "relative", roots: []string{"data"}, wantErr: true},
		{name: "missing", roots: []string{b("nowhere")}, wantErr: true},
		{name: "dangling", roots: []string{b("data/link-dangling")}, wantErr: true},
		{name: "file", roots: []string{b("data/file.txt")}, wantErr: true},
		{name: "slash", roots: []string{"/"}, wantErr: true},
		{name: "symlink to slash", roots: []string{slashLink}, wantErr: true},
		{name: "one bad of two", roots: []string{b("data"), "rel"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(tt.roots)
			if tt.wantErr {
				if !errors.Is(err, ErrBadRoot) {
					t.Fatalf("New(%q) = %v, want %v", tt.roots, err, ErrBadRoot)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q) = %v", tt.roots, err)
			}
			if diff := cmp.Diff(tt.want, got.DataRoots); diff != "" {
				t.Errorf("New(%q).DataRoots mismatch (-want +got):\n%s", tt.roots, diff)
			}
		})
	}
}

func TestZeroPolicyRefuses(t *testing.T) {
	var pol Policy
	if _, err := pol.Check("f", "/tmp", true); !errors.Is(err, ErrOutsideRoots) {
		t.Errorf("Policy{}.Check(%q) = %v, want %v", "/tmp", err, ErrOutsideRoots)
	}
}

func TestBelow(t *testing.T) {
	tests := []struct {
		child, parent string
		want          bool
	}{
		{"/data/x", "/data", true},
		{"/data/x/y", "/data", true},
		{"/data", "/data", false},
		{"/data2", "/data", false},
		{"/data2/x", "/data", false},
		{"/dat", "/data", false},
		{"/", "/data", false},
		{"/x", "/", true},
		{"/", "/", false},
	}
	for _, tt := range tests {
		if got := below(tt.child, tt.parent); got != tt.want {
			t.Errorf("below(%q, %q) = %v, want %v", tt.child, tt.parent, got, tt.want)
		}
	}
}

// FuzzCheck: whatever the path, Check either refuses it with an *Error or
// returns a clean absolute path, free of symlinks, strictly below the data
// root. Paths starting with "/" are taken relative to the test tree so that
// the fuzzer explores it; others are used as they are.
func FuzzCheck(f *testing.F) {
	tr := newTree(f)
	pol, err := New([]string{tr.data})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "/", "data/in", "/data/../outside", "/data/in/", "/data//in", "/data/link-out/x",
		"/data/link-in/new", "/data/file.txt/x", "/data/link-dangling/x", "/data2", "/data/in\x00", "/data/link-up/secret",
		"/data/link-slash/etc", "/data/link-rel/../../outside"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, p string, mustExist bool) {
		if strings.HasPrefix(p, "/") {
			p = tr.base + p
		}
		got, err := pol.Check("f", p, mustExist)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Check(%q) = %v, want an *Error", p, err)
			}
			return
		}
		if !filepath.IsAbs(got) || filepath.Clean(got) != got {
			t.Fatalf("Check(%q) = %q, not absolute and clean", p, got)
		}
		if !below(got, tr.data) {
			t.Fatalf("Check(%q) = %q, not below %q", p, got, tr.data)
		}
		if res, err := filepath.EvalSymlinks(got); err == nil && res != got {
			t.Fatalf("Check(%q) = %q, which still resolves to %q", p, got, res)
		}
	})
}
