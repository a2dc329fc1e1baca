package outputs

import (
	"context"
	"os"
)

// CollectRoot is CollectWith on a directory already opened: root is an
// [os.Root] on the output channel's directory (the daemon opens it from the
// data root's descriptor without following symlinks), dir names it in the
// manifest and in errors. Nothing is looked up by dir.
func CollectRoot(ctx context.Context, name, dir string, root *os.Root, o Options) (*Manifest, error) {
	return collectIn(ctx, name, dir, root, o)
}
