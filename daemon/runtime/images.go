package runtime

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
)

// Image is an image in containerd's image store.
type Image struct {
	// Name is the normalised reference the image is stored under.
	Name string
	// Digest is the digest of the image's target (its manifest, or the
	// index for multi-platform images): what "name@digest" pins.
	Digest string
	// Size is the content size of the image for this node's platform
	// (manifest, config and compressed layers).
	Size int64
	// Created is when the image record was created on this node (imported
	// or pulled).
	Created time.Time
}

// ImportFormat says what kind of tarball Import expects.
type ImportFormat string

// Import formats.
const (
	// FormatAuto (or "") accepts an OCI image layout or a docker-archive.
	FormatAuto ImportFormat = "auto"
	// FormatOCI accepts only an OCI image layout (oci-layout, index.json,
	// blobs/).
	FormatOCI ImportFormat = "oci"
	// FormatDocker accepts only a docker-archive (`docker save`, with
	// manifest.json).
	FormatDocker ImportFormat = "docker"
)

// ImportOptions tune Import.
type ImportOptions struct {
	// RefName names an image the archive leaves unnamed (an OCI layout
	// whose index entry has no full reference, a docker-archive saved by
	// id). Without it, an archive with unnamed images is refused.
	RefName string
	// Format restricts the archive format; FormatAuto accepts both.
	Format ImportFormat
}

// Import reads an image tarball (OCI image layout or docker-archive,
// optionally gzip- or zstd-compressed), stores its images under their
// normalised names and unpacks them for the configured snapshotter. A name
// an earlier image had is moved to the imported one.
func (c *Containerd) Import(ctx context.Context, r io.Reader, opts ImportOptions) ([]Image, error) {
	ctx = c.ns(ctx)
	refName := ""
	if opts.RefName != "" {
		n, err := NormalizeRef(opts.RefName)
		if err != nil {
			return nil, err
		}
		refName = n
	}
	switch opts.Format {
	case "", FormatAuto, FormatOCI, FormatDocker:
	default:
		return nil, fmt.Errorf("%w: import format %q (want %q or %q)", ErrInvalidArgument, opts.Format, FormatOCI, FormatDocker)
	}

	dr, err := compression.DecompressStream(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidArchive, err.Error())
	}
	defer dr.Close()
	sniff := newTarSniffer(dr)

	var (
		mu       sync.Mutex
		unnamed  []digest.Digest
		badNames []string
	)
	translate := func(name string) string {
		// An OCI ref.name without a repository is only a tag ("latest");
		// such an image counts as unnamed.
		if !strings.ContainsAny(name, "/:@") {
			return ""
		}
		n, err := NormalizeRef(name)
		if err != nil {
			mu.Lock()
			badNames = append(badNames, truncate(name, 80))
			mu.Unlock()
			return ""
		}
		return n
	}
	nameUnnamed := func(d digest.Digest) string {
		mu.Lock()
		defer mu.Unlock()
		unnamed = append(unnamed, d)
		return refName
	}
	imgs, err := c.client.Import(ctx, sniff,
		client.WithImageRefTranslator(translate),
		client.WithSkipDigestRef(func(name string) bool { return name != "" }),
		client.WithDigestRef(nameUnnamed),
	)
	format := sniff.finish()
	if err != nil {
		if errors.Is(err, errdefs.ErrInvalidArgument) || format == "" || strings.Contains(err.Error(), "unrecognized image format") {
			return nil, fmt.Errorf("%w: %s", ErrInvalidArchive, err.Error())
		}
		return nil, fmt.Errorf("import: %w", err)
	}
	created := make([]string, 0, len(imgs))
	for _, img := range imgs {
		created = append(created, img.Name)
	}
	fail := func(err error) ([]Image, error) {
		for _, name := range created {
			if derr := c.client.ImageService().Delete(ctx, name); derr != nil && !errdefs.IsNotFound(derr) {
				c.log.WarnContext(ctx, "removing image after failed import", "image", name, "error", derr)
			}
		}
		return nil, err
	}

	switch {
	case opts.Format == FormatOCI && format != FormatOCI:
		return fail(fmt.Errorf("%w: not an OCI image layout (no oci-layout file)", ErrInvalidArchive))
	case opts.Format == FormatDocker && !sniff.dockerManifest:
		return fail(fmt.Errorf("%w: not a docker-archive (no manifest.json)", ErrInvalidArchive))
	case len(badNames) > 0:
		return fail(fmt.Errorf("%w: invalid image name %q in archive", ErrInvalidArchive, badNames[0]))
	case len(unnamed) > 0 && refName == "":
		return fail(fmt.Errorf("%w: archive holds an unnamed image; give a name for it", ErrInvalidArchive))
	case len(unnamed) > 1:
		return fail(fmt.Errorf("%w: archive holds %d unnamed images; one name can name only one", ErrInvalidArchive, len(unnamed)))
	case len(imgs) == 0:
		return fail(fmt.Errorf("%w: archive holds no image", ErrInvalidArchive))
	}

	out := make([]Image, 0, len(imgs))
	for _, img := range imgs {
		// Names from docker-archives and containerd's own annotation
		// bypass the translator; check them here.
		if n, err := NormalizeRef(img.Name); err != nil || n != img.Name {
			return fail(fmt.Errorf("%w: invalid image name %q in archive", ErrInvalidArchive, truncate(img.Name, 80)))
		}
		ci := client.NewImage(c.client, img)
		if err := ci.Unpack(ctx, c.cfg.Snapshotter); err != nil {
			return fail(fmt.Errorf("unpack %s: %w", img.Name, err))
		}
		im, err := c.toImage(ctx, img)
		if err != nil {
			return fail(err)
		}
		c.log.InfoContext(ctx, "image imported", "image", im.Name, "digest", im.Digest, "size", im.Size)
		out = append(out, im)
	}
	return out, nil
}

// ListImages returns the images in c's namespace.
func (c *Containerd) ListImages(ctx context.Context) ([]Image, error) {
	ctx = c.ns(ctx)
	imgs, err := c.client.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]Image, 0, len(imgs))
	for _, img := range imgs {
		im, err := c.toImage(ctx, img)
		if err != nil {
			// An image whose content is partly missing (another
			// platform's, say) is listed without a size.
			c.log.DebugContext(ctx, "image size unknown", "image", img.Name, "error", err)
			im = Image{Name: img.Name, Digest: img.Target.Digest.String(), Created: img.CreatedAt}
		}
		out = append(out, im)
	}
	return out, nil
}

// GetImage returns the image stored under ref (normalised first).
func (c *Containerd) GetImage(ctx context.Context, ref string) (Image, error) {
	ctx = c.ns(ctx)
	img, err := c.lookupImage(ctx, ref)
	if err != nil {
		return Image{}, err
	}
	return c.toImage(ctx, img)
}

// RemoveImage deletes the image stored under ref and lets containerd
// collect the content and snapshots no other image or container uses.
// Containers created from it keep their snapshots.
func (c *Containerd) RemoveImage(ctx context.Context, ref string) error {
	ctx = c.ns(ctx)
	name, err := NormalizeRef(ref)
	if err != nil {
		return err
	}
	if err := c.client.ImageService().Delete(ctx, name, images.SynchronousDelete()); err != nil {
		return notFound(err, ErrImageNotFound, "remove image "+name)
	}
	c.log.InfoContext(ctx, "image removed", "image", name)
	return nil
}

func (c *Containerd) lookupImage(ctx context.Context, ref string) (images.Image, error) {
	name, err := NormalizeRef(ref)
	if err != nil {
		return images.Image{}, err
	}
	img, err := c.client.ImageService().Get(ctx, name)
	if err != nil {
		return images.Image{}, notFound(err, ErrImageNotFound, "image "+name)
	}
	return img, nil
}

func (c *Containerd) toImage(ctx context.Context, img images.Image) (Image, error) {
	size, err := client.NewImage(c.client, img).Size(ctx)
	if err != nil {
		return Image{}, fmt.Errorf("size of image %s: %w", img.Name, err)
	}
	return Image{Name: img.Name, Digest: img.Target.Digest.String(), Size: size, Created: img.CreatedAt}, nil
}

// tarSniffer passes a tar stream through while noting which top-level
// files it holds, so Import can tell an OCI layout from a docker-archive.
type tarSniffer struct {
	io.Reader
	pw   *io.PipeWriter
	done chan struct{}

	ociLayout      bool
	dockerManifest bool
}

func newTarSniffer(r io.Reader) *tarSniffer {
	pr, pw := io.Pipe()
	s := &tarSniffer{Reader: io.TeeReader(r, pw), pw: pw, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer io.Copy(io.Discard, pr) //nolint:errcheck // drain so the tee never blocks
		tr := tar.NewReader(pr)
		for {
			hdr, err := tr.Next()
			if err != nil {
				return
			}
			switch path.Clean(hdr.Name) {
			case "oci-layout":
				s.ociLayout = true
			case "manifest.json":
				s.dockerManifest = true
			}
		}
	}()
	return s
}

// finish stops sniffing and returns the format seen ("" when neither).
func (s *tarSniffer) finish() ImportFormat {
	s.pw.Close()
	<-s.done
	switch {
	case s.ociLayout:
		return FormatOCI
	case s.dockerManifest:
		return FormatDocker
	}
	return ""
}
