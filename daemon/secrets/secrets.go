package secrets

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pcnode/pcnode/daemon/spec"
)

var (
	// ErrNotConfigured is returned by a nil *Store: the node has no secret
	// store ([secrets] dir is empty).
	ErrNotConfigured = errors.New("the node has no secret store ([secrets] dir is empty)")
	// ErrNotFound is returned when no secret of that name exists.
	ErrNotFound = errors.New("no such secret")
	// ErrRefused is returned when a secret or its directory exists but may
	// not be used (not a regular file, wrong owner or mode, too large, bad
	// name, NUL byte).
	ErrRefused = errors.New("secret refused")
)

// Store reads secrets from one directory. A nil *Store is a node without a
// store: every call returns ErrNotConfigured.
type Store struct {
	dir      string
	maxBytes int64
	owner    uint32 // uid that must own the directory and the files
}

// New returns the store of dir (absolute), reading files of at most
// maxBytes. It does not touch the directory: a missing or wrong one is
// reported by each Check and Read, so the daemon starts and says why.
func New(dir string, maxBytes int64) *Store {
	return &Store{dir: dir, maxBytes: maxBytes, owner: 0}
}

// Dir is the store's directory, for messages.
func (s *Store) Dir() string {
	if s == nil {
		return ""
	}
	return s.dir
}

// Check reports whether the secret name exists and may be used, without
// reading its content.
func (s *Store) Check(name string) error {
	f, err := s.open(name)
	if err != nil {
		return err
	}
	return f.Close()
}

// Read returns the content of the secret name, less one trailing newline.
func (s *Store) Read(name string) (string, error) {
	f, err := s.open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, s.maxBytes+1))
	if err != nil {
		return "", fmt.Errorf("secret %q: reading %s: %w", name, s.path(name), err)
	}
	if int64(len(b)) > s.maxBytes {
		return "", fmt.Errorf("secret %q: %s grew over %d bytes ([secrets] max_secret_bytes) while read: %w", name, s.path(name), s.maxBytes, ErrRefused)
	}
	v := strings.TrimSuffix(string(b), "\n")
	if strings.ContainsRune(v, 0) {
		return "", fmt.Errorf("secret %q: %s contains a NUL byte, which no environment variable can hold: %w", name, s.path(name), ErrRefused)
	}
	return v, nil
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

// open opens the secret's file beneath the directory, checked as the
// package doc says, and returns it ready to read.
func (s *Store) open(name string) (*os.File, error) {
	if s == nil {
		return nil, fmt.Errorf("secret %q: %w", name, ErrNotConfigured)
	}
	if why := spec.CheckSecretName(name); why != "" {
		return nil, fmt.Errorf("%s: %w", why, ErrRefused)
	}
	dfd, err := unix.Open(s.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("secret %q: opening the secret directory %s: %w: %w", name, s.dir, err, ErrRefused)
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		return nil, fmt.Errorf("secret %q: %s: %w", name, s.dir, err)
	}
	if st.Uid != s.owner || st.Mode&0o022 != 0 {
		return nil, fmt.Errorf("secret %q: the secret directory %s must be owned by uid %d and writable by no one else (it is uid %d, mode %04o): %w",
			name, s.dir, s.owner, st.Uid, st.Mode&0o7777, ErrRefused)
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, fmt.Errorf("secret %q: no file %s: %w", name, s.path(name), ErrNotFound)
	case errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("secret %q: %s is a symlink; a secret must be a regular file: %w", name, s.path(name), ErrRefused)
	case err != nil:
		return nil, fmt.Errorf("secret %q: opening %s: %w: %w", name, s.path(name), err, ErrRefused)
	}
	f := os.NewFile(uintptr(fd), s.path(name))
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("secret %q: %s: %w", name, s.path(name), err)
	}
	var why string
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		why = "is not a regular file"
	case st.Uid != s.owner:
		why = fmt.Sprintf("is owned by uid %d, not %d", st.Uid, s.owner)
	case st.Mode&0o077 != 0:
		why = fmt.Sprintf("has mode %04o; a secret may have no group or other permission bits (chmod 0600)", st.Mode&0o7777)
	case st.Size > s.maxBytes:
		why = fmt.Sprintf("is %d bytes, more than %d ([secrets] max_secret_bytes)", st.Size, s.maxBytes)
	}
	if why != "" {
		f.Close()
		return nil, fmt.Errorf("secret %q: %s %s: %w", name, s.path(name), why, ErrRefused)
	}
	return f, nil
}
