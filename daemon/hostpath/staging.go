package hostpath

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Staging makes bind mounts of opened directories below one directory of
// the daemon's own (normally <state>/staging), so that a container runtime,
// which mounts by path, is handed a path that leads to the very directory
// that was checked: <dir>/<group>/<name> is a bind mount made from the open
// descriptor (through /proc/self/fd), not from the directory's name.
//
// While any staging mount exists, dir itself is a private bind mount of
// itself (or, if something is mounted there already, that mount is made
// private), so staging mounts are not propagated to other mount
// namespaces; the bind mount is unmounted again when the last group is
// released. Sweep, at start, unmounts whatever is mounted at or below dir. Nothing below dir
// is ever removed recursively: only empty directories are, so a staging
// mount that could not be unmounted never exposes the data it shows to a
// removal.
type Staging struct {
	dir string

	mu     sync.Mutex
	groups map[string]bool // groups with mounts
	bound  bool            // dir is a bind mount of itself made by this Staging
}

// NewStaging returns a Staging below dir (created, mode 0o700), after
// sweeping what an earlier run of the daemon left there (see Sweep). dir
// must be absolute and clean and belong to the daemon alone: runtimes are
// given paths below it.
func NewStaging(dir string) (*Staging, error) {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return nil, fmt.Errorf("hostpath: staging directory %q is not absolute and clean", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("hostpath: staging: %w", err)
	}
	// Mount points in mountinfo have their symlinks resolved.
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("hostpath: staging: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("hostpath: staging: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("hostpath: staging %q is not a directory", dir)
	}
	s := &Staging{dir: dir, groups: map[string]bool{}}
	if err := s.Sweep(); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir is the staging directory.
func (s *Staging) Dir() string { return s.dir }

// Mount makes a staging bind mount of d at <dir>/<group>/<name> and returns
// its path. The mount is recursive (submounts of d come along, as with
// rbind) and private, and is checked to show d itself (same device and
// inode) before the path is returned; otherwise it is removed again and the
// error wraps ErrChanged. group and name must be single path elements. Call
// Release(group) when the mounts are no longer needed, also after Mount
// failed.
func (s *Staging) Mount(group, name string, d *Dir) (string, error) {
	if !validElement(group) || !validElement(name) {
		return "", fmt.Errorf("hostpath: staging: invalid group or name %q/%q", group, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.privateLocked(); err != nil {
		return "", err
	}
	gdir := filepath.Join(s.dir, group)
	if err := os.Mkdir(gdir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		s.releaseRootLocked()
		return "", fmt.Errorf("hostpath: staging: %w", err)
	}
	s.groups[group] = true
	target := filepath.Join(gdir, name)
	if err := os.Mkdir(target, 0o700); err != nil {
		return "", fmt.Errorf("hostpath: staging: %w", err)
	}
	if err := unix.Mount(d.procPath(), target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		_ = unix.Rmdir(target)
		return "", fmt.Errorf("hostpath: staging mount of %q: %w", d.path, err)
	}
	fail := func(err error) (string, error) {
		_ = unix.Unmount(target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		_ = unix.Rmdir(target)
		return "", err
	}
	if err := unix.Mount("", target, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fail(fmt.Errorf("hostpath: staging mount of %q: making it private: %w", d.path, err))
	}
	fd, err := unix.Open(target, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("hostpath: staging mount of %q: %w", d.path, err))
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	unix.Close(fd)
	if err != nil {
		return fail(fmt.Errorf("hostpath: staging mount of %q: %w", d.path, err))
	}
	if got := (FileID{Dev: uint64(st.Dev), Ino: st.Ino}); got != d.id {
		return fail(fmt.Errorf("hostpath: staging mount of %q shows %v, want %v: %w", d.path, got, d.id, ErrChanged))
	}
	return target, nil
}

// Release unmounts (lazily: MNT_DETACH) and removes every staging mount of
// group. Mounts a runtime made from them are separate mounts in other
// namespaces and are not affected. Release is idempotent.
func (s *Staging) Release(group string) error {
	if !validElement(group) {
		return fmt.Errorf("hostpath: staging: invalid group %q", group)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.removeGroupLocked(group)
	delete(s.groups, group)
	if len(s.groups) == 0 {
		err = errors.Join(err, s.releaseRootLocked())
	}
	return err
}

// Sweep unmounts everything mounted at or below the staging directory
// (deepest first) and removes the empty directories left there. The daemon
// calls it (through NewStaging) at start, for staging mounts of a daemon
// that crashed; it must not be called while mounts are in use.
func (s *Staging) Sweep() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mounts, err := mountsBelow(s.dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("hostpath: staging: unmount %q: %w", m, err))
		}
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("hostpath: staging: %w", err))...)
	}
	for _, e := range entries {
		if err := s.removeGroupLocked(e.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	s.groups = map[string]bool{}
	return errors.Join(errs...)
}

// removeGroupLocked unmounts and removes <dir>/<group>/*, then the group
// directory. Only empty directories are removed.
func (s *Staging) removeGroupLocked(group string) error {
	gdir := filepath.Join(s.dir, group)
	entries, err := os.ReadDir(gdir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hostpath: staging: %w", err)
	}
	var errs []error
	for _, e := range entries {
		target := filepath.Join(gdir, e.Name())
		if err := unix.Unmount(target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) {
			// EINVAL: not a mount point (never mounted, or already gone).
			errs = append(errs, fmt.Errorf("hostpath: staging: unmount %q: %w", target, err))
			continue
		}
		if err := unix.Rmdir(target); err != nil {
			errs = append(errs, fmt.Errorf("hostpath: staging: remove %q: %w", target, err))
		}
	}
	if err := unix.Rmdir(gdir); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("hostpath: staging: remove %q: %w", gdir, err))
	}
	return errors.Join(errs...)
}

// privateLocked makes the staging directory a private bind mount of itself
// unless it already is one of this Staging's.
func (s *Staging) privateLocked() error {
	if len(s.groups) > 0 {
		return nil
	}
	mounted, err := mountsBelow(s.dir)
	if err != nil {
		return err
	}
	if !slices.Contains(mounted, s.dir) {
		if err := unix.Mount(s.dir, s.dir, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("hostpath: staging: bind %q: %w", s.dir, err)
		}
		s.bound = true
	}
	if err := unix.Mount("", s.dir, "", unix.MS_PRIVATE, ""); err != nil {
		_ = s.releaseRootLocked()
		return fmt.Errorf("hostpath: staging: make %q private: %w", s.dir, err)
	}
	return nil
}

// releaseRootLocked unmounts the staging directory's own bind mount.
// A mount someone else made there (a dedicated file system, say) stays.
func (s *Staging) releaseRootLocked() error {
	if len(s.groups) > 0 || !s.bound {
		return nil
	}
	s.bound = false
	if err := unix.Unmount(s.dir, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("hostpath: staging: unmount %q: %w", s.dir, err)
	}
	return nil
}

// validElement reports whether name is one plain path element.
func validElement(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00") && len(name) <= 255
}

// mountsBelow returns the mount points at or below dir, from
// /proc/self/mountinfo, deepest first.
func mountsBelow(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("hostpath: staging: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || below(mp, dir) {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("hostpath: staging: reading mountinfo: %w", err)
	}
	slices.SortFunc(out, func(a, b string) int {
		if d := strings.Count(b, "/") - strings.Count(a, "/"); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(out), nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space, ...) of a
// mountinfo field.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
