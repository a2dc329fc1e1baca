package runtime

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxLinkHops bounds the symbolic and hard links one lookup follows, as
// the kernel's ELOOP limit does.
const maxLinkHops = 40

// Whiteout names (OCI image spec, "Representing Changes").
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// ReadImageFile reads the regular file at file (an absolute path inside
// the image, e.g. "/processing-container.json") from the image stored
// under ref, for this node's platform, without unpacking or running it.
// It returns at most maxBytes bytes (larger files give ErrFileTooLarge)
// and the image's digest (Image.Digest), by which callers may cache the
// result: the same digest always yields the same file.
//
// A missing file gives ErrFileNotFound; a directory or device gives
// ErrNotRegularFile. Symbolic links are resolved inside the image (see
// the package documentation).
func (c *Containerd) ReadImageFile(ctx context.Context, ref, file string, maxBytes int64) (_ []byte, _ string, retErr error) {
	defer c.markUnavailable(&retErr)
	ctx = c.ns(ctx)
	if maxBytes <= 0 {
		return nil, "", fmt.Errorf("%w: maxBytes %d must be positive", ErrInvalidArgument, maxBytes)
	}
	target, err := imagePath(file)
	if err != nil {
		return nil, "", err
	}
	img, err := c.lookupImage(ctx, ref)
	if err != nil {
		return nil, "", err
	}
	dgst := img.Target.Digest.String()
	cs := c.client.ContentStore()
	manifest, err := images.Manifest(ctx, cs, img.Target, platforms.Default())
	if err != nil {
		return nil, dgst, fmt.Errorf("manifest of %s: %w", img.Name, err)
	}
	open := func(ctx context.Context, i int) (io.ReadCloser, error) {
		return openLayer(ctx, cs, manifest.Layers[i])
	}
	data, err := findInLayers(ctx, len(manifest.Layers), open, target, maxBytes)
	if err != nil {
		return nil, dgst, fmt.Errorf("read %s from %s: %w", file, img.Name, err)
	}
	return data, dgst, nil
}

// imagePath checks a caller's in-image path and returns it relative to
// the image root, cleaned.
func imagePath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%w: image path %q must be absolute", ErrInvalidArgument, truncate(p, 80))
	}
	rel := cleanRel(p)
	if rel == "" {
		return "", fmt.Errorf("%w: image path %q names the root", ErrInvalidArgument, p)
	}
	return rel, nil
}

// cleanRel cleans p as if rooted at the image root ("/a/../../b" is "b")
// and returns it without the leading slash ("" for the root).
func cleanRel(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// openLayer returns a layer's uncompressed tar stream.
func openLayer(ctx context.Context, cs content.Store, desc ocispec.Descriptor) (io.ReadCloser, error) {
	ra, err := cs.ReaderAt(ctx, desc)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	dr, err := compression.DecompressStream(content.NewReader(ra))
	if err != nil {
		ra.Close()
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	return &layerReader{ReadCloser: dr, ra: ra}, nil
}

type layerReader struct {
	io.ReadCloser
	ra io.Closer
}

func (l *layerReader) Close() error {
	err := l.ReadCloser.Close()
	if cerr := l.ra.Close(); err == nil {
		err = cerr
	}
	return err
}

// layerOpener opens layer i (0 is the bottom layer) as an uncompressed tar
// stream.
type layerOpener func(ctx context.Context, i int) (io.ReadCloser, error)

// findInLayers looks target (relative to the image root) up in n layers
// and returns its content.
func findInLayers(ctx context.Context, n int, open layerOpener, target string, maxBytes int64) ([]byte, error) {
	p, top := target, n-1
	for hop := 0; ; hop++ {
		if hop > maxLinkHops {
			return nil, fmt.Errorf("%w: too many links resolving %q", ErrFileNotFound, "/"+target)
		}
		res, err := lookup(ctx, open, top, p, maxBytes)
		if err != nil {
			return nil, err
		}
		switch res.kind {
		case foundFile:
			return res.data, nil
		case foundSymlink:
			p, top = res.next, n-1
		case foundHardlink:
			p, top = res.next, res.layer
		default:
			return nil, fmt.Errorf("%w: %q", ErrFileNotFound, "/"+p)
		}
		if p == "" {
			return nil, fmt.Errorf("%w: %q resolves to the image root", ErrNotRegularFile, "/"+target)
		}
	}
}

type lookupKind int

const (
	notFoundKind lookupKind = iota
	foundFile
	foundSymlink
	foundHardlink
)

type lookupResult struct {
	kind  lookupKind
	data  []byte
	next  string // the path to look up next (links)
	layer int    // the layer to restart from (hard links)
}

// lookup finds p in layers top..0 without following links: it returns
// the file's content, or the path a link (at p or at one of its parent
// directories) leads to.
//
// Per layer, from the top: an entry at p decides; else a whiteout of p or
// of a parent, or an opaque marker in a parent, hides everything below;
// else a parent that is not a directory decides (a symlink redirects, any
// other file means there is no p). A parent that an upper layer made a
// directory replaces whatever non-directory a lower layer has there, and
// everything that lower layer's parent hid.
func lookup(ctx context.Context, open layerOpener, top int, p string, maxBytes int64) (lookupResult, error) {
	parents := parentDirs(p)
	isDir := map[string]bool{}
	for i := top; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return lookupResult{}, err
		}
		s, err := scanLayer(ctx, open, i, p, parents, maxBytes)
		if err != nil {
			return lookupResult{}, err
		}
		if e := s.exact; e != nil {
			switch e.typ {
			case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old tars use TypeRegA
				if e.size > maxBytes {
					return lookupResult{}, fmt.Errorf("%w: %q is %d bytes, more than %d", ErrFileTooLarge, "/"+p, e.size, maxBytes)
				}
				return lookupResult{kind: foundFile, data: e.data}, nil
			case tar.TypeSymlink:
				return lookupResult{kind: foundSymlink, next: resolveLink(path.Dir(p), e.link)}, nil
			case tar.TypeLink:
				return lookupResult{kind: foundHardlink, next: cleanRel(e.link), layer: i}, nil
			default:
				return lookupResult{}, fmt.Errorf("%w: %q (tar type %q)", ErrNotRegularFile, "/"+p, e.typ)
			}
		}
		for _, dir := range parents {
			e, ok := s.parents[dir]
			if !ok {
				continue
			}
			if e.typ == tar.TypeDir {
				isDir[dir] = true
				continue
			}
			if isDir[dir] {
				// An upper layer replaced this non-directory by a
				// directory that does not hold p.
				return lookupResult{}, nil
			}
			if e.typ == tar.TypeSymlink {
				rest := strings.TrimPrefix(p, dir+"/")
				return lookupResult{kind: foundSymlink, next: cleanRel(resolveLink(path.Dir(dir), e.link) + "/" + rest)}, nil
			}
			return lookupResult{}, nil // a parent is a file
		}
		if s.whiteout || s.opaque {
			return lookupResult{}, nil
		}
	}
	return lookupResult{}, nil
}

// resolveLink resolves a symlink's target found in directory dir, inside
// the image: absolute targets start at the image root, ".." stops there.
func resolveLink(dir, target string) string {
	if strings.HasPrefix(target, "/") {
		return cleanRel(target)
	}
	return cleanRel(dir + "/" + target)
}

// parentDirs returns p's parent directories, shortest first ("a/b/c" gives
// "a", "a/b").
func parentDirs(p string) []string {
	var out []string
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	return out
}

type tarEntry struct {
	typ  byte
	link string
	size int64
	data []byte
}

// layerScan is what one layer says about a path and its parents.
type layerScan struct {
	exact    *tarEntry
	parents  map[string]*tarEntry
	whiteout bool // p or a parent is whited out
	opaque   bool // a parent directory (or the root) is opaque
}

func scanLayer(ctx context.Context, open layerOpener, i int, p string, parents []string, maxBytes int64) (layerScan, error) {
	rc, err := open(ctx, i)
	if err != nil {
		return layerScan{}, err
	}
	defer rc.Close()
	isParent := map[string]bool{"": true}
	for _, d := range parents {
		isParent[d] = true
	}
	s := layerScan{parents: map[string]*tarEntry{}}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			return layerScan{}, fmt.Errorf("layer %d: %w", i, err)
		}
		if err := ctx.Err(); err != nil {
			return layerScan{}, err
		}
		name := cleanRel(hdr.Name)
		dir, base := path.Split(name)
		dir = strings.TrimSuffix(dir, "/")
		switch {
		case base == whiteoutOpaque:
			if isParent[dir] {
				s.opaque = true
			}
		case strings.HasPrefix(base, whiteoutPrefix):
			hidden := path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix))
			if hidden == p || isParent[hidden] {
				s.whiteout = true
			}
		case name == p:
			e := &tarEntry{typ: hdr.Typeflag, link: hdr.Linkname, size: hdr.Size}
			//nolint:staticcheck // old tars use TypeRegA
			if (hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA) && hdr.Size <= maxBytes {
				e.data, err = io.ReadAll(io.LimitReader(tr, hdr.Size))
				if err != nil {
					return layerScan{}, fmt.Errorf("layer %d: %s: %w", i, name, err)
				}
			}
			s.exact = e
		case isParent[name] && name != "":
			s.parents[name] = &tarEntry{typ: hdr.Typeflag, link: hdr.Linkname}
		}
	}
}
