package logs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveDriverBinary(t *testing.T) {
	asRoot := os.Geteuid() == 0
	for _, tc := range []struct {
		name        string
		setup       func(t *testing.T, dir string) (path, self string)
		requireRoot bool
		needRoot    bool // the setup changes ownership
		wantErr     string
		wantFile    string // relative to dir
	}{
		{
			name: "default beside the daemon",
			setup: func(t *testing.T, dir string) (string, string) {
				writeExe(t, filepath.Join(dir, DriverBinaryName), 0o755)
				return "", filepath.Join(dir, "pcnoded")
			},
			requireRoot: asRoot,
			wantFile:    DriverBinaryName,
		},
		{
			name: "configured path through a symbolic link",
			setup: func(t *testing.T, dir string) (string, string) {
				writeExe(t, filepath.Join(dir, "real-logd"), 0o755)
				if err := os.Symlink("real-logd", filepath.Join(dir, "link")); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(dir, "link"), "/nonexistent/pcnoded"
			},
			requireRoot: asRoot,
			wantFile:    "real-logd",
		},
		{
			name: "missing beside the daemon",
			setup: func(t *testing.T, dir string) (string, string) {
				return "", filepath.Join(dir, "pcnoded")
			},
			wantErr: "no such file",
		},
		{
			name: "relative",
			setup: func(t *testing.T, dir string) (string, string) {
				return "bin/pcnode-logd", filepath.Join(dir, "pcnoded")
			},
			wantErr: "not an absolute path",
		},
		{
			name: "directory",
			setup: func(t *testing.T, dir string) (string, string) {
				return dir, "/x/pcnoded"
			},
			wantErr: "not a regular file",
		},
		{
			name: "not executable",
			setup: func(t *testing.T, dir string) (string, string) {
				p := filepath.Join(dir, "logd")
				writeExe(t, p, 0o644)
				return p, "/x/pcnoded"
			},
			wantErr: "not executable",
		},
		{
			name: "group-writable under root",
			setup: func(t *testing.T, dir string) (string, string) {
				p := filepath.Join(dir, "logd")
				writeExe(t, p, 0o775)
				return p, "/x/pcnoded"
			},
			requireRoot: true,
			wantErr:     "writable by group or others",
		},
		{
			name: "group-writable is fine without root",
			setup: func(t *testing.T, dir string) (string, string) {
				p := filepath.Join(dir, "logd")
				writeExe(t, p, 0o775)
				return p, "/x/pcnoded"
			},
			wantFile: "logd",
		},
		{
			name: "owned by another user under root",
			setup: func(t *testing.T, dir string) (string, string) {
				p := filepath.Join(dir, "logd")
				writeExe(t, p, 0o755)
				if err := os.Chown(p, 65534, 65534); err != nil {
					t.Fatal(err)
				}
				return p, "/x/pcnoded"
			},
			requireRoot: true,
			needRoot:    true,
			wantErr:     "owned by uid 65534",
		},
		{
			name: "directory writable by others under root",
			setup: func(t *testing.T, dir string) (string, string) {
				sub := filepath.Join(dir, "open")
				if err := os.Mkdir(sub, 0o777); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(sub, 0o777); err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(sub, "logd")
				writeExe(t, p, 0o755)
				return p, "/x/pcnoded"
			},
			requireRoot: true,
			needRoot:    true,
			wantErr:     "in a directory that is not root's or is writable",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needRoot && !asRoot {
				t.Skip("needs root to set up file ownership")
			}
			if tc.requireRoot && !asRoot && tc.wantErr == "" {
				t.Skip("needs root-owned files")
			}
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path, self := tc.setup(t, dir)
			got, err := ResolveDriverBinary(path, self, tc.requireRoot)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("ResolveDriverBinary(%q, %q, %v) = %q, %v, want an ErrInvalidConfig containing %q", path, self, tc.requireRoot, got, err, tc.wantErr)
				}
				return
			}
			want, _ := filepath.EvalSymlinks(filepath.Join(dir, tc.wantFile))
			if err != nil || got != want {
				t.Fatalf("ResolveDriverBinary(%q, %q, %v) = %q, %v, want %q", path, self, tc.requireRoot, got, err, want)
			}
		})
	}
}

func writeExe(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
