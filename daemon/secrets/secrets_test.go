package secrets

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testStore is a store over a fresh directory owned by the test's uid
// (root in production: the owner is the one thing tests change).
func testStore(t *testing.T, maxBytes int64) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secrets")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s := New(dir, maxBytes)
	s.owner = uint32(os.Getuid())
	return s, dir
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestReadAndRotate(t *testing.T) {
	s, dir := testStore(t, 64)
	write(t, filepath.Join(dir, "project-password"), "s3cr=t value\n", 0o600)
	if err := s.Check("project-password"); err != nil {
		t.Fatalf("Check = %v", err)
	}
	got, err := s.Read("project-password")
	if err != nil || got != "s3cr=t value" {
		t.Fatalf("Read = %q, %v; want %q (one trailing newline dropped)", got, err, "s3cr=t value")
	}
	// Replacing the file is a rotation: the next Read sees the new value.
	write(t, filepath.Join(dir, "project-password.new"), "rotated\n\n", 0o400)
	if err := os.Rename(filepath.Join(dir, "project-password.new"), filepath.Join(dir, "project-password")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Read("project-password"); err != nil || got != "rotated\n" {
		t.Errorf("Read after rotation = %q, %v; want %q", got, err, "rotated\n")
	}
}

func TestRefusals(t *testing.T) {
	s, dir := testStore(t, 16)
	write(t, filepath.Join(dir, "ok"), "v", 0o600)
	write(t, filepath.Join(dir, "readable"), "v", 0o640)
	write(t, filepath.Join(dir, "big"), strings.Repeat("x", 17), 0o600)
	write(t, filepath.Join(dir, "nul"), "a\x00b", 0o600)
	outside := filepath.Join(t.TempDir(), "target")
	write(t, outside, "not a secret", 0o600)
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want string
		err        error
	}{
		{"missing", "no file", ErrNotFound},
		{"readable", "mode 0640", ErrRefused},
		{"big", "17 bytes, more than 16", ErrRefused},
		{"nul", "NUL byte", ErrRefused},
		{"link", "is a symlink", ErrRefused},
		{"subdir", "not a regular file", ErrRefused},
		{"fifo", "not a regular file", ErrRefused},
		{"../ok", "not a secret name", ErrRefused},
		{".hidden", "not a secret name", ErrRefused},
		{"", "not a secret name", ErrRefused},
		{strings.Repeat("a", 64), "not a secret name", ErrRefused},
	} {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan struct{})
			go func() { // a FIFO must never block the daemon
				defer close(done)
				_, err := s.Read(c.name)
				if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.want) {
					t.Errorf("Read(%q) = %v, want %v saying %q", c.name, err, c.err, c.want)
				}
				if err != nil && strings.Contains(err.Error(), "not a secret\"") {
					t.Errorf("Read(%q) error shows content: %v", c.name, err)
				}
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("Read(%q) blocked", c.name)
			}
		})
	}
	// The file's owner must be the store's (root).
	other := *s
	other.owner = s.owner + 1
	if err := other.Check("ok"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "must be owned by uid") {
		t.Errorf("Check(ok) with another owner = %v, want the directory's owner refused", err)
	}
}

func TestDirectoryRefusals(t *testing.T) {
	s, dir := testStore(t, 16)
	write(t, filepath.Join(dir, "ok"), "v", 0o600)
	if err := os.Chmod(dir, 0o722); err != nil {
		t.Fatal(err)
	}
	if err := s.Check("ok"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "writable by no one else") {
		t.Errorf("Check in a group/other-writable directory = %v, want refused", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "dirlink")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	viaLink := New(link, 16)
	viaLink.owner = s.owner
	if err := viaLink.Check("ok"); !errors.Is(err, ErrRefused) {
		t.Errorf("Check through a symlinked directory = %v, want refused", err)
	}
	missing := New(filepath.Join(dir, "nope"), 16)
	if err := missing.Check("ok"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "opening the secret directory") {
		t.Errorf("Check with a missing directory = %v, want refused naming the directory", err)
	}
	var none *Store
	if _, err := none.Read("ok"); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("nil Store Read = %v, want %v", err, ErrNotConfigured)
	}
}
