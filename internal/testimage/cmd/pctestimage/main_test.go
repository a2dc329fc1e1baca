package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tarNames lists the entries of the tarball at path.
func tarNames(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		names[h.Name] = true
	}
}

func TestRunWritesArchives(t *testing.T) {
	dir := t.TempDir()
	pc := filepath.Join(dir, "pc.json")
	if err := os.WriteFile(pc, []byte(`{"name":"x","templates":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		format string
		want   string // an entry the format has
	}{
		{"oci", "index.json"},
		{"docker", "manifest.json"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			out := filepath.Join(dir, tc.format+".tar")
			var stdout, stderr bytes.Buffer
			args := []string{"-o", out, "-name", "pcnode.test/cmd:1", "-processing-container", pc, "-format", tc.format}
			if err := run(args, &stdout, &stderr); err != nil {
				t.Fatalf("run(%q) = %v (stderr %q)", args, err, stderr.String())
			}
			fields := strings.Split(strings.TrimSpace(stdout.String()), "\t")
			if len(fields) != 2 || fields[0] != "pcnode.test/cmd:1" || !strings.HasPrefix(fields[1], "sha256:") {
				t.Errorf("stdout = %q, want reference<TAB>sha256:…", stdout.String())
			}
			if names := tarNames(t, out); !names[tc.want] {
				t.Errorf("%s has no %s: %v", out, tc.want, names)
			}
			if info, err := os.Stat(out); err != nil || info.Mode().Perm() != 0o644 {
				t.Errorf("Stat(%s) = %v, %v; want mode 0644", out, info, err)
			}
			left, _ := filepath.Glob(filepath.Join(dir, ".pctestimage-*"))
			if len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func TestRunRejects(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
	}{
		{"no output", nil, true},
		{"extra argument", []string{"-o", filepath.Join(dir, "x.tar"), "extra"}, true},
		{"bad format", []string{"-o", filepath.Join(dir, "x.tar"), "-format", "zip"}, true},
		{"both pc flags", []string{"-o", filepath.Join(dir, "x.tar"), "-processing-container", "a", "-no-processing-container"}, true},
		{"pc missing", []string{"-o", filepath.Join(dir, "x.tar"), "-processing-container", filepath.Join(dir, "missing.json")}, false},
		{"pc is a directory", []string{"-o", filepath.Join(dir, "x.tar"), "-processing-container", dir}, false},
		{"bad name", []string{"-o", filepath.Join(dir, "x.tar"), "-name", "UPPER/../x"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, io.Discard, io.Discard)
			if err == nil {
				t.Fatalf("run(%q) = nil, want an error", tc.args)
			}
			if got := errors.Is(err, errUsage); got != tc.usage {
				t.Errorf("run(%q) = %v; usage error %v, want %v", tc.args, err, got, tc.usage)
			}
			if _, err := os.Stat(filepath.Join(dir, "x.tar")); err == nil {
				t.Errorf("run(%q) left x.tar behind", tc.args)
			}
		})
	}
}
