package outputs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// Empty removes everything in the output directory root, an [os.Root] on
// the directory the daemon opened and is about to mount (dir names it in
// errors only). It never follows a symlink: symlinks inside are removed,
// not followed, and nothing outside root is touched. root's directory
// itself is never removed, so the object mounted is the one checked.
//
// Empty stops between entries when ctx is cancelled, leaving the directory
// partly emptied. It is idempotent.
func Empty(ctx context.Context, root *os.Root, dir string) error {
	d, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("outputs: empty %q: %w", dir, err)
	}
	defer d.Close()
	for {
		// Entries not yet returned are returned exactly once even while
		// earlier ones are removed, so one pass suffices.
		names, err := d.Readdirnames(256)
		for _, name := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := root.RemoveAll(name); err != nil {
				return fmt.Errorf("outputs: empty %q: %w", dir, err)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("outputs: empty %q: %w", dir, err)
		}
	}
}

// Prepare makes dir ready to be mounted as an output channel by name: it
// creates it and every missing parent (mode 0o755 before umask) without
// following any symlink from "/" down (ErrSymlink) and, unless preserve is
// set, empties it as Empty does. dir must be absolute and clean
// (ErrBadPath).
//
// The daemon does not use Prepare: it opens output directories from the
// data root's descriptor (daemon/hostpath) and calls Empty on what it
// opened, so that what it empties is what it mounts. Prepare is for tools
// and tests that have only a path.
func Prepare(ctx context.Context, dir string, preserve bool) error {
	root, err := openDir(ctx, dir, true)
	if err != nil {
		return err
	}
	defer root.Close()
	if preserve {
		return nil
	}
	return Empty(ctx, root, dir)
}
