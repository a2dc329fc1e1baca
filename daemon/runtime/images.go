package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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
	// Limits bound the import; zero fields take DefaultImportLimits.
	Limits ImportLimits
}

// LabelImport is the label on the containerd leases Import takes: one per
// import, holding everything the import has written until it is done.
// SweepImports finds the ones a killed process left behind by it.
const LabelImport = "io.pcnode.import"

// importLeaseExpiry is how long containerd keeps an import's lease should
// pcnoded never come back to remove it.
const importLeaseExpiry = 24 * time.Hour

// cleanupTimeout bounds removing what a failed import wrote.
const cleanupTimeout = time.Minute

// Import reads an image tarball (OCI image layout or docker-archive,
// optionally gzip- or zstd-compressed), stores its images under their
// normalised names and unpacks them for the configured snapshotter. A name
// an earlier image had is moved to the imported one.
//
// The archive is checked while it streams in (see ImportLimits): passing a
// limit gives an ImportLimitError (ErrImportLimit); a malformed archive
// (not a tar, cut short, bad JSON, a blob missing or not its digest, a
// descriptor of the wrong size, a layer that does not unpack) gives
// ErrInvalidArchive; a cancelled ctx gives its error.
// Whatever an import wrote is held by one containerd lease (LabelImport)
// and is removed as soon as the import fails or is cancelled; image names
// are only created once every image is unpacked, so a failed import
// changes none.
func (c *Containerd) Import(ctx context.Context, r io.Reader, opts ImportOptions) (_ []Image, retErr error) {
	defer c.markUnavailable(&retErr)
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
	limits, err := opts.Limits.withDefaults()
	if err != nil {
		return nil, err
	}
	leased, release, err := c.importLease(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	imgs, err := c.importImages(leased, r, opts.Format, refName, limits)
	if err != nil {
		c.log.WarnContext(ctx, "image import failed", "error", err)
		return nil, err
	}
	out := make([]Image, 0, len(imgs))
	for _, img := range imgs {
		im, err := c.toImage(ctx, img, true)
		if err != nil {
			return nil, err
		}
		c.log.InfoContext(ctx, "image imported", "image", im.Name, "digest", im.Digest, "size", im.Size)
		out = append(out, im)
	}
	return out, nil
}

// importImages does Import's work under the import's lease.
func (c *Containerd) importImages(ctx context.Context, r io.Reader, format ImportFormat, refName string, limits ImportLimits) ([]images.Image, error) {
	var compressed atomic.Int64
	dr, err := compression.DecompressStream(atomicCounter{r: r, n: &compressed})
	if err != nil {
		return nil, importFailure(ctx, "reading the archive", err)
	}
	defer dr.Close()
	counter := &compressed
	if dr.GetCompression() == compression.Uncompressed {
		counter = nil
	}
	guard := newImportGuard(dr, limits, counter)
	cs := jsonLimitedStore{Store: c.client.ContentStore(), max: limits.MaxJSONBytes}
	index, err := archive.ImportIndex(ctx, cs, guard)
	if gerr := guard.finish(); gerr != nil {
		return nil, gerr
	}
	if err != nil {
		return nil, importFailure(ctx, "reading the archive", err)
	}
	switch {
	case format == FormatOCI && guard.format() != FormatOCI:
		return nil, fmt.Errorf("%w: not an OCI image layout (no oci-layout file)", ErrInvalidArchive)
	case format == FormatDocker && !guard.dockerManifest:
		return nil, fmt.Errorf("%w: not a docker-archive (no manifest.json)", ErrInvalidArchive)
	}
	imgs, err := c.archiveImages(ctx, cs, index, refName)
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		if err := client.NewImage(c.client, img).Unpack(ctx, c.cfg.Snapshotter); err != nil {
			return nil, importFailure(ctx, "unpacking "+img.Name, err)
		}
	}
	return c.storeImages(ctx, imgs)
}

// atomicCounter counts the bytes read through it, for readers on another
// goroutine.
type atomicCounter struct {
	r io.Reader
	n *atomic.Int64
}

func (c atomicCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// archiveImages lists the images an imported index names, checks that the
// content each needs on this platform is all there, at the sizes its
// descriptors give, and labels it so that it outlives the import's lease
// once an image names it.
func (c *Containerd) archiveImages(ctx context.Context, cs jsonLimitedStore, index ocispec.Descriptor, refName string) ([]images.Image, error) {
	entries, err := images.Children(ctx, cs, index)
	if err != nil {
		return nil, importFailure(ctx, "reading index.json", err)
	}
	var (
		imgs    []images.Image
		unnamed int
	)
	for _, m := range entries {
		if _, ok := m.Annotations[images.AnnotationManifestSubject]; ok {
			continue // a referrer (signature, attestation), not an image
		}
		name, err := archiveImageName(m.Annotations)
		if err != nil {
			return nil, err
		}
		if name == "" {
			unnamed++
			name = refName
		}
		imgs = append(imgs, images.Image{Name: name, Target: m})
	}
	switch {
	case unnamed > 0 && refName == "":
		return nil, fmt.Errorf("%w: archive holds an unnamed image; give a name for it", ErrInvalidArchive)
	case unnamed > 1:
		return nil, fmt.Errorf("%w: archive holds %d unnamed images; one name can name only one", ErrInvalidArchive, unnamed)
	case len(imgs) == 0:
		return nil, fmt.Errorf("%w: archive holds no image", ErrInvalidArchive)
	}

	check := images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		info, err := cs.Info(ctx, desc.Digest)
		switch {
		case errdefs.IsNotFound(err):
			return nil, fmt.Errorf("%w: %s %s is named but not in the archive", ErrInvalidArchive, desc.MediaType, desc.Digest)
		case err != nil:
			return nil, importFailure(ctx, "checking "+desc.Digest.String(), err)
		case info.Size != desc.Size:
			return nil, fmt.Errorf("%w: %s %s is %d bytes, its descriptor says %d", ErrInvalidArchive, desc.MediaType, desc.Digest, info.Size, desc.Size)
		case isJSONMediaType(desc.MediaType) && info.Size > cs.max:
			return nil, &ImportLimitError{Limit: LimitJSONBytes, Max: cs.max,
				What: fmt.Sprintf("%s %s (%d bytes)", desc.MediaType, desc.Digest, info.Size)}
		}
		children, err := images.Children(ctx, cs, desc)
		if err != nil {
			return nil, importFailure(ctx, fmt.Sprintf("reading %s %s", desc.MediaType, desc.Digest), err)
		}
		return children, nil
	})
	walk := images.SetChildrenLabels(cs, images.FilterPlatforms(check, platforms.Default()))
	if err := images.WalkNotEmpty(ctx, walk, index); err != nil {
		return nil, err
	}
	return imgs, nil
}

// archiveImageName returns the normalised name an index entry gives its
// image: containerd's and docker-archives' io.containerd.image.name, else
// an OCI org.opencontainers.image.ref.name that is a full reference. It is
// "" when the entry names none (a ref.name of a tag alone counts as none).
func archiveImageName(annotations map[string]string) (string, error) {
	name := annotations[images.AnnotationImageName]
	if name == "" {
		name = annotations[ocispec.AnnotationRefName]
		if !strings.ContainsAny(name, "/:@") {
			return "", nil
		}
	}
	n, err := NormalizeRef(name)
	if err != nil {
		return "", fmt.Errorf("%w: invalid image name %q in archive", ErrInvalidArchive, truncate(name, 80))
	}
	return n, nil
}

// storeImages creates (or moves) the image names. If one fails, the names
// created before it are removed again.
func (c *Containerd) storeImages(ctx context.Context, imgs []images.Image) ([]images.Image, error) {
	is := c.client.ImageService()
	var created []string
	out := make([]images.Image, 0, len(imgs))
	for _, img := range imgs {
		rec, err := is.Update(ctx, img, "target")
		if errdefs.IsNotFound(err) {
			rec, err = is.Create(ctx, img)
			if err == nil {
				created = append(created, rec.Name)
			}
		}
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			for _, name := range created {
				if derr := is.Delete(cctx, name); derr != nil && !errdefs.IsNotFound(derr) {
					c.log.WarnContext(ctx, "removing image after failed import", "image", name, "error", derr)
				}
			}
			return nil, importFailure(ctx, "naming "+img.Name, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// importFailure sorts out why an import failed: the caller went away;
// containerd is unreachable, broken or out of space (the node's fault);
// else what the archive held (the caller's fault: ErrInvalidArchive).
func importFailure(ctx context.Context, what string, err error) error {
	switch {
	case errors.Is(err, ErrImportLimit), errors.Is(err, ErrInvalidArchive):
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("import stopped while %s: %w", what, ctx.Err())
	case errdefs.IsUnavailable(err), errdefs.IsDeadlineExceeded(err), errdefs.IsCanceled(err),
		errdefs.IsInternal(err), errdefs.IsDataLoss(err), errdefs.IsResourceExhausted(err),
		strings.Contains(err.Error(), "no space left on device"):
		return fmt.Errorf("import: %s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %s", ErrInvalidArchive, what, err.Error())
}

// importLease creates the lease one import works under and returns ctx
// carrying it, and a function that removes the lease with everything it
// still holds alone (partial ingests, content and snapshots no image
// names). That function works even after ctx is cancelled.
func (c *Containerd) importLease(ctx context.Context) (context.Context, func(), error) {
	l, err := c.client.LeasesService().Create(ctx,
		leases.WithRandomID(),
		leases.WithExpiration(importLeaseExpiry),
		leases.WithLabel(LabelImport, strconv.Itoa(os.Getpid())))
	if err != nil {
		return nil, nil, fmt.Errorf("import: creating a lease: %w", err)
	}
	release := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := c.dropLease(cctx, l); err != nil {
			c.log.WarnContext(ctx, "removing an import's lease", "lease", l.ID, "error", err)
		}
	}
	return leases.WithLease(ctx, l.ID), release, nil
}

// dropLease deletes lease l and has containerd collect, before it
// returns, what only l held: partial ingests (their data included),
// content and snapshots no image names. Ingests are not aborted by name:
// another import of the same archive may be writing the same ref under its
// own lease, which keeps it.
func (c *Containerd) dropLease(ctx context.Context, l leases.Lease) error {
	if err := c.client.LeasesService().Delete(ctx, l, leases.SynchronousDelete); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// SweepImports removes the leases of imports that never finished (pcnoded
// was killed during them), with the partial content they hold, and returns
// how many it removed. Call it at start, before any import runs.
func (c *Containerd) SweepImports(ctx context.Context) (_ int, retErr error) {
	defer c.markUnavailable(&retErr)
	ctx = c.ns(ctx)
	ls, err := c.client.LeasesService().List(ctx, fmt.Sprintf("labels.%q", LabelImport))
	if err != nil {
		return 0, fmt.Errorf("list import leases: %w", err)
	}
	var errs []error
	n := 0
	for _, l := range ls {
		if err := c.dropLease(ctx, l); err != nil {
			errs = append(errs, fmt.Errorf("lease %s: %w", l.ID, err))
			continue
		}
		n++
		c.log.InfoContext(ctx, "removed an unfinished import", "lease", l.ID, "pid", l.Labels[LabelImport], "created", l.CreatedAt)
	}
	return n, errors.Join(errs...)
}

// ListImages returns the images in c's namespace.
func (c *Containerd) ListImages(ctx context.Context) (_ []Image, retErr error) {
	defer c.markUnavailable(&retErr)
	ctx = c.ns(ctx)
	imgs, err := c.client.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]Image, 0, len(imgs))
	for _, img := range imgs {
		im, err := c.toImage(ctx, img, false)
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
func (c *Containerd) GetImage(ctx context.Context, ref string) (_ Image, retErr error) {
	defer c.markUnavailable(&retErr)
	ctx = c.ns(ctx)
	img, err := c.lookupImage(ctx, ref)
	if err != nil {
		return Image{}, err
	}
	return c.toImage(ctx, img, false)
}

// RemoveImage deletes the image stored under ref and lets containerd
// collect the content and snapshots no other image or container uses.
// Containers created from it keep their snapshots.
func (c *Containerd) RemoveImage(ctx context.Context, ref string) (retErr error) {
	defer c.markUnavailable(&retErr)
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

// toImage describes img. Its size (the content of the image's tree that
// the content store holds) is read once per target digest, then cached:
// reading it walks the index, manifests and layers through the content
// service, which every submit and every start paid. An image pulled or
// imported is measured afresh (fresh), as more of its tree may be there.
func (c *Containerd) toImage(ctx context.Context, img images.Image, fresh bool) (Image, error) {
	size, ok := c.sizes.get(img.Target.Digest)
	if !ok || fresh {
		var err error
		size, err = client.NewImage(c.client, img).Size(ctx)
		if err != nil {
			return Image{}, fmt.Errorf("size of image %s: %w", img.Name, err)
		}
		c.sizes.put(img.Target.Digest, size)
	}
	return Image{Name: img.Name, Digest: img.Target.Digest.String(), Size: size, Created: img.CreatedAt}, nil
}
