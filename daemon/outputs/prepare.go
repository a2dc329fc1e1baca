package outputs

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Prepare makes dir ready to be mounted as an output channel: it creates it
// and every missing parent (mode 0o755 before umask) and, unless preserve is
// set, removes everything in it. It never follows a symlink: a symlink on the
// path, dir itself included, is refused with ErrSymlink before anything is
// created through it, and symlinks inside dir are removed, not followed. dir
// itself is never removed. dir must be absolute and clean (ErrBadPath) and
// should be the path resolved by the host path policy.
//
// Prepare stops between entries when ctx is cancelled, leaving dir partly
// emptied. It is idempotent.
func Prepare(ctx context.Context, dir string, preserve bool) error {
	root, err := openDir(ctx, dir, true)
	if err != nil {
		return err
	}
	defer root.Close()
	if preserve {
		return nil
	}

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
