package logs

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// DriverBinaryName is the file name of the logging binary, cmd/pcnode-logd;
// the daemon looks for it next to its own executable unless configured.
const DriverBinaryName = "pcnode-logd"

// ResolveDriverBinary returns the absolute path, symbolic links resolved, of
// the logging binary the containerd shim should run: path when it is not
// empty (it must be absolute), else DriverBinaryName in the directory of
// self (the daemon's executable). The shim execs it for every task as
// containerd's user, root on a node, so it must be an executable regular
// file; when requireRoot is true (the daemon runs as root) it must also be
// owned by root and not writable by group or others, nor its directory, or
// whoever could change it would run code as root. The returned path names
// the file that was checked, so a symbolic link changed later does not
// redirect the shim.
func ResolveDriverBinary(path, self string, requireRoot bool) (string, error) {
	if path != "" {
		return checkDriverBinary(path, requireRoot)
	}
	resolved, err := checkDriverBinary(filepath.Join(filepath.Dir(self), DriverBinaryName), requireRoot)
	if err != nil {
		return "", fmt.Errorf("%w (the default: %s installed beside the daemon's executable)", err, DriverBinaryName)
	}
	return resolved, nil
}

func checkDriverBinary(path string, requireRoot bool) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("%w: log driver %q is not an absolute path", ErrInvalidConfig, path)
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("%w: log driver %q: %w", ErrInvalidConfig, path, err)
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return "", fmt.Errorf("%w: log driver %q: %w", ErrInvalidConfig, path, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: log driver %q is not a regular file (%s)", ErrInvalidConfig, path, fi.Mode().Type())
	}
	if fi.Mode().Perm()&0o100 == 0 {
		return "", fmt.Errorf("%w: log driver %q is not executable by its owner (mode %v)", ErrInvalidConfig, path, fi.Mode().Perm())
	}
	if requireRoot {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return "", fmt.Errorf("%w: log driver %q: no owner information", ErrInvalidConfig, path)
		}
		if st.Uid != 0 {
			return "", fmt.Errorf("%w: log driver %q is owned by uid %d, not root: the shim runs it as root", ErrInvalidConfig, path, st.Uid)
		}
		if fi.Mode().Perm()&0o022 != 0 {
			return "", fmt.Errorf("%w: log driver %q is writable by group or others (mode %v): the shim runs it as root", ErrInvalidConfig, path, fi.Mode().Perm())
		}
		// Whoever may write the directory may replace the file.
		dir := filepath.Dir(resolved)
		di, err := os.Stat(dir)
		if err != nil {
			return "", fmt.Errorf("%w: log driver directory %q: %w", ErrInvalidConfig, dir, err)
		}
		if dst, ok := di.Sys().(*syscall.Stat_t); !ok || dst.Uid != 0 || di.Mode().Perm()&0o022 != 0 {
			return "", fmt.Errorf("%w: log driver %q is in a directory that is not root's or is writable by group or others (%q, mode %v): the shim runs it as root", ErrInvalidConfig, path, dir, di.Mode().Perm())
		}
	}
	return resolved, nil
}
