package testimage

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/pcnode/pcnode/internal/testenv"
)

// DefaultNamespace is the containerd namespace Connect uses when given "".
const DefaultNamespace = "pcnode-test"

// Import imports an OCI or docker-archive tarball into containerd (the
// namespace of ctx, else the client's default) and unpacks every image it
// names for the default snapshotter. It returns the images created or
// updated, named as in the archive (docker-archive names normalised).
func Import(ctx context.Context, c *client.Client, r io.Reader) ([]images.Image, error) {
	imgs, err := c.Import(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("testimage: import: %w", err)
	}
	for _, img := range imgs {
		if err := client.NewImage(c, img).Unpack(ctx, ""); err != nil {
			return nil, fmt.Errorf("testimage: unpack %s: %w", img.Name, err)
		}
	}
	return imgs, nil
}

// ImportFile is Import from the archive at path.
func ImportFile(ctx context.Context, c *client.Client, path string) ([]images.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Import(ctx, c, f)
}

// Connect returns a client of the private containerd that the test
// command started (testenv.ContainerdAddress: skips, or fails under
// `make test`, when there is none) and a context in namespace ns
// (DefaultNamespace if ""), ending with the test. The client is closed
// when the test ends.
func Connect(t testing.TB, ns string) (context.Context, *client.Client) {
	t.Helper()
	addr := testenv.ContainerdAddress(t)
	if ns == "" {
		ns = DefaultNamespace
	}
	c, err := client.New(addr, client.WithDefaultNamespace(ns))
	if err != nil {
		t.Fatalf("containerd client for %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return namespaces.WithNamespace(t.Context(), ns), c
}

// Load builds img, imports it as an OCI archive into c (namespace of ctx)
// and unpacks it, failing t on any error. It returns the image named
// img.Name (normalised). The image is left in containerd: the same Image
// always has the same digests, so other tests may load it again.
func Load(ctx context.Context, t testing.TB, c *client.Client, img Image) client.Image {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image.tar")
	b, err := WriteFile(ctx, path, img, FormatOCI)
	if err != nil {
		t.Fatalf("testimage.Load: %v", err)
	}
	imgs, err := ImportFile(ctx, c, path)
	if err != nil {
		t.Fatalf("testimage.Load: %v", err)
	}
	for _, i := range imgs {
		if i.Name == b.Name {
			return client.NewImage(c, i)
		}
	}
	t.Fatalf("testimage.Load: %v: %s not among %d imported", ErrNotImported, b.Name, len(imgs))
	return nil
}
