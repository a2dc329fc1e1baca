package outputs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// base returns a fresh temporary directory with symlinks resolved, so that
// the paths handed to Prepare contain none of their own.
func base(t testing.TB) string {
	t.Helper()
	b, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// list returns every path below dir, relative to it, without following
// symlinks.
func list(t testing.TB, dir string) []string {
	t.Helper()
	got := []string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			got = append(got, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	return got
}

// fill gives dir a bit of everything: files, nested and read-only
// directories, symlinks into and out of it, a FIFO. Outside it, bystander
// holds files that symlinks in dir point to.
func fill(t *testing.T, dir, bystander string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "a.txt"), []byte("a"))
	writeFile(t, filepath.Join(dir, ".hidden"), []byte("h"))
	writeFile(t, filepath.Join(dir, "sub/deep/b.txt"), []byte("b"))
	writeFile(t, filepath.Join(dir, "ro/c.txt"), []byte("c"))
	if os.Geteuid() == 0 {
		// Only root (the daemon) can empty a read-only directory, and
		// only root's t.TempDir can clean one up.
		if err := os.Chmod(filepath.Join(dir, "ro"), 0o555); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(bystander, "keep.txt"), []byte("keep"))
	symlink(t, bystander, filepath.Join(dir, "link-out-dir"))
	symlink(t, filepath.Join(bystander, "keep.txt"), filepath.Join(dir, "link-out-file"))
	symlink(t, "sub", filepath.Join(dir, "sub-link"))
	symlink(t, filepath.Join(dir, "nowhere"), filepath.Join(dir, "dangling"))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPrepare(t *testing.T) {
	tests := []struct {
		name     string
		existing bool // dir exists and is filled
		preserve bool
		want     []string
	}{
		{name: "create missing", want: []string{}},
		{name: "create missing preserve", preserve: true, want: []string{}},
		{name: "empty existing", existing: true, want: []string{}},
		{name: "preserve existing", existing: true, preserve: true, want: []string{
			".hidden", "a.txt", "dangling", "fifo", "link-out-dir", "link-out-file",
			"ro", "ro/c.txt", "sub", "sub-link", "sub/deep", "sub/deep/b.txt",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := base(t)
			dir := filepath.Join(b, "data/task/out")
			bystander := filepath.Join(b, "bystander")
			var before os.FileInfo
			if tt.existing {
				fill(t, dir, bystander)
				var err error
				if before, err = os.Stat(dir); err != nil {
					t.Fatal(err)
				}
			}
			if err := Prepare(context.Background(), dir, tt.preserve); err != nil {
				t.Fatalf("Prepare(%q, %v) = %v, want nil", dir, tt.preserve, err)
			}
			after, err := os.Lstat(dir)
			if err != nil || !after.IsDir() {
				t.Fatalf("Lstat(%q) after Prepare = %v, %v, want a directory", dir, after, err)
			}
			if before != nil && !os.SameFile(before, after) {
				t.Errorf("Prepare(%q) replaced the directory itself", dir)
			}
			if diff := cmp.Diff(tt.want, list(t, dir)); diff != "" {
				t.Errorf("Prepare(%q, %v) left (-want +got):\n%s", dir, tt.preserve, diff)
			}
			if tt.existing {
				// Symlinks were removed, never followed.
				if got := list(t, bystander); !cmp.Equal(got, []string{"keep.txt"}) {
					t.Errorf("Prepare(%q) touched the symlinks' targets: bystander holds %q", dir, got)
				}
			}
			// Idempotent.
			if err := Prepare(context.Background(), dir, tt.preserve); err != nil {
				t.Errorf("second Prepare(%q, %v) = %v, want nil", dir, tt.preserve, err)
			}
		})
	}
}

func TestPrepareCreatesWithMode(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(base(t), "a/b/c")
	if err := Prepare(context.Background(), dir, false); err != nil {
		t.Fatalf("Prepare(%q) = %v", dir, err)
	}
	for _, p := range []string{dir, filepath.Dir(dir), filepath.Dir(filepath.Dir(dir))} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o755 {
			t.Errorf("mode of %q = %v, want %v", p, got, os.FileMode(0o755))
		}
	}
}

func TestPrepareRefuses(t *testing.T) {
	tests := []struct {
		name string
		// setup builds the tree in b and returns the dir to prepare and a
		// path that must not exist afterwards ("" for none).
		setup   func(t *testing.T, b string) (dir, mustNotExist string)
		wantErr error
	}{
		{
			name: "dir is a symlink",
			setup: func(t *testing.T, b string) (string, string) {
				writeFile(t, filepath.Join(b, "target/keep.txt"), []byte("k"))
				symlink(t, filepath.Join(b, "target"), filepath.Join(b, "out"))
				return filepath.Join(b, "out"), ""
			},
			wantErr: ErrSymlink,
		},
		{
			name: "dir is a relative symlink",
			setup: func(t *testing.T, b string) (string, string) {
				writeFile(t, filepath.Join(b, "target/keep.txt"), []byte("k"))
				symlink(t, "target", filepath.Join(b, "out"))
				return filepath.Join(b, "out"), ""
			},
			wantErr: ErrSymlink,
		},
		{
			name: "ancestor is a symlink",
			setup: func(t *testing.T, b string) (string, string) {
				if err := os.Mkdir(filepath.Join(b, "elsewhere"), 0o755); err != nil {
					t.Fatal(err)
				}
				symlink(t, filepath.Join(b, "elsewhere"), filepath.Join(b, "link"))
				return filepath.Join(b, "link/new/out"), filepath.Join(b, "elsewhere/new")
			},
			wantErr: ErrSymlink,
		},
		{
			name: "dangling symlink",
			setup: func(t *testing.T, b string) (string, string) {
				symlink(t, filepath.Join(b, "nowhere"), filepath.Join(b, "out"))
				return filepath.Join(b, "out"), filepath.Join(b, "nowhere")
			},
			wantErr: ErrSymlink,
		},
		{
			name: "dir is a file",
			setup: func(t *testing.T, b string) (string, string) {
				writeFile(t, filepath.Join(b, "out"), []byte("x"))
				return filepath.Join(b, "out"), ""
			},
			wantErr: ErrNotDirectory,
		},
		{
			name: "ancestor is a file",
			setup: func(t *testing.T, b string) (string, string) {
				writeFile(t, filepath.Join(b, "f"), []byte("x"))
				return filepath.Join(b, "f/out"), ""
			},
			wantErr: ErrNotDirectory,
		},
		{
			name:    "relative",
			setup:   func(t *testing.T, b string) (string, string) { return "out", "" },
			wantErr: ErrBadPath,
		},
		{
			name: "unclean",
			setup: func(t *testing.T, b string) (string, string) {
				return filepath.Join(b, "x") + "/../out", filepath.Join(b, "out")
			},
			wantErr: ErrBadPath,
		},
		{
			name:    "slash",
			setup:   func(t *testing.T, b string) (string, string) { return "/", "" },
			wantErr: ErrBadPath,
		},
		{
			name:    "empty",
			setup:   func(t *testing.T, b string) (string, string) { return "", "" },
			wantErr: ErrBadPath,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := base(t)
			dir, mustNotExist := tt.setup(t, b)
			before := list(t, b)
			err := Prepare(context.Background(), dir, false)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Prepare(%q) = %v, want %v", dir, err, tt.wantErr)
			}
			if mustNotExist != "" {
				if _, err := os.Lstat(mustNotExist); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Prepare(%q) created %q through a symlink", dir, mustNotExist)
				}
			}
			if diff := cmp.Diff(before, list(t, b)); diff != "" {
				t.Errorf("Prepare(%q) changed the tree (-before +after):\n%s", dir, diff)
			}
		})
	}
}

func TestPrepareCancelled(t *testing.T) {
	b := base(t)
	dir := filepath.Join(b, "out")
	fill(t, dir, filepath.Join(b, "bystander"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Prepare(ctx, dir, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("Prepare(%q) with a cancelled context = %v, want %v", dir, err, context.Canceled)
	}
	if got := list(t, dir); len(got) == 0 {
		t.Errorf("Prepare(%q) with a cancelled context emptied it", dir)
	}
}
