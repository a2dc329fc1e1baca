package outputs

import (
	"context"
	"fmt"
	"os"
)

// Chown gives the output directory dir itself (not what is in it) to
// uid:gid, so that a task running as that user can write there. dir is
// opened as Collect opens it, never through a symlink, and changed through
// that descriptor (fchown).
func Chown(ctx context.Context, dir string, uid, gid int) error {
	root, err := openDir(ctx, dir, false)
	if err != nil {
		return err
	}
	defer root.Close()
	return ChownRoot(root, dir, uid, gid)
}

// ChownRoot is Chown on the directory already open as root (dir names it in
// errors only).
func ChownRoot(root *os.Root, dir string, uid, gid int) error {
	f, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("outputs: chown %q: %w", dir, err)
	}
	defer f.Close()
	if err := f.Chown(uid, gid); err != nil {
		return fmt.Errorf("outputs: chown %q: %w", dir, err)
	}
	return nil
}
