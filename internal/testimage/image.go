package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultName is the reference an Image without a Name gets.
const DefaultName = "pcnode.test/pctest:latest"

// ImagePath is the PATH in the image config.
const ImagePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// epoch is the timestamp of every layer entry and of the config, so that
// builds are reproducible.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Image describes a test image. The zero value is the default test image:
// pctest with DefaultProcessingContainer, named DefaultName.
type Image struct {
	// Name is the image reference, e.g. "pcnode.test/dummy:1"; it is
	// normalised as docker does ("pctest" → "docker.io/library/pctest:latest")
	// and must not carry a digest. Empty: DefaultName.
	Name string
	// ProcessingContainer is written to /processing-container.json as is
	// (it may be invalid on purpose). Nil: DefaultProcessingContainer().
	ProcessingContainer []byte
	// OmitProcessingContainer leaves /processing-container.json out.
	OmitProcessingContainer bool
	// Files are added to the layer after the standard ones; a File with
	// the path of a standard entry replaces it. Missing parent
	// directories are created (0755).
	Files []File
	// Env is appended to the config's Env after ImagePath (NAME=VALUE).
	Env []string
	// Labels are the image config's labels.
	Labels map[string]string
	// Cmd is the config's Cmd (arguments to the /pctest entrypoint).
	Cmd []string
	// User and WorkingDir go into the config as they are.
	User, WorkingDir string
}

// File is one extra entry of the image's layer.
type File struct {
	// Path is absolute and clean, e.g. "/data/broken.json".
	Path string
	// Data is a regular file's content.
	Data []byte
	// Mode holds the permission bits and the type: 0 type bits for a
	// regular file, fs.ModeDir for a directory, fs.ModeSymlink for a
	// symbolic link to Linkname. Zero Mode: a 0644 regular file.
	Mode fs.FileMode
	// Linkname is a symbolic link's target.
	Linkname string
}

// Built is a built image: its blobs and descriptors, ready to be written
// in either archive format.
type Built struct {
	// Name is the normalised reference (e.g. "pcnode.test/pctest:latest").
	Name string
	// Manifest and its descriptor (in the OCI archive's index.json, with
	// platform and name annotations). A docker-archive import makes its
	// own manifest, but with the same config and layer.
	Manifest     ocispec.Manifest
	ManifestDesc ocispec.Descriptor
	// Config and its descriptor; the config digest is the same after
	// import from either format.
	Config     ocispec.Image
	ConfigDesc ocispec.Descriptor
	// LayerDesc describes the gzip-compressed layer; DiffID is the sha256
	// of the uncompressed layer tar.
	LayerDesc ocispec.Descriptor
	DiffID    digest.Digest

	manifest, config, layerGz, layerTar []byte
}

// Build compiles the test program (once) and builds img in memory.
func Build(ctx context.Context, img Image) (*Built, error) {
	named, err := normaliseName(img.Name)
	if err != nil {
		return nil, err
	}
	prog, err := Program(ctx)
	if err != nil {
		return nil, err
	}
	pctest, err := os.ReadFile(prog)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBuildProgram, err)
	}
	entries, err := layerEntries(img, pctest)
	if err != nil {
		return nil, err
	}
	layerTar, err := writeLayer(entries)
	if err != nil {
		return nil, err
	}
	layerGz, err := gzipBytes(layerTar)
	if err != nil {
		return nil, err
	}
	b := &Built{Name: named.String(), layerTar: layerTar, layerGz: layerGz, DiffID: digest.FromBytes(layerTar)}
	b.LayerDesc = ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageLayerGzip,
		Digest:    digest.FromBytes(layerGz),
		Size:      int64(len(layerGz)),
	}
	created := epoch
	b.Config = ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config: ocispec.ImageConfig{
			User:       img.User,
			Env:        append([]string{ImagePath}, img.Env...),
			Entrypoint: []string{"/pctest"},
			Cmd:        img.Cmd,
			WorkingDir: img.WorkingDir,
			Labels:     img.Labels,
		},
		RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{b.DiffID}},
		History: []ocispec.History{{Created: &created, CreatedBy: "pcnode internal/testimage", Comment: "pctest"}},
	}
	if b.config, err = json.Marshal(b.Config); err != nil {
		return nil, err
	}
	b.ConfigDesc = ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageConfig,
		Digest:    digest.FromBytes(b.config),
		Size:      int64(len(b.config)),
	}
	b.Manifest = ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    b.ConfigDesc,
		Layers:    []ocispec.Descriptor{b.LayerDesc},
	}
	if b.manifest, err = json.Marshal(b.Manifest); err != nil {
		return nil, err
	}
	tag := "latest"
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	b.ManifestDesc = ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest,
		Digest:    digest.FromBytes(b.manifest),
		Size:      int64(len(b.manifest)),
		Platform:  &ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Annotations: map[string]string{
			ocispec.AnnotationRefName: tag,
			annotationImageName:       b.Name,
		},
	}
	return b, nil
}

// annotationImageName is containerd's index annotation holding the full
// image name, which its importer prefers to ocispec.AnnotationRefName.
const annotationImageName = "io.containerd.image.name"

func normaliseName(name string) (reference.NamedTagged, error) {
	if name == "" {
		name = DefaultName
	}
	ref, err := reference.ParseDockerRef(name)
	if err != nil {
		return nil, fmt.Errorf("%w: name %q: %w", ErrInvalidImage, name, err)
	}
	tagged, ok := ref.(reference.NamedTagged)
	if !ok {
		return nil, fmt.Errorf("%w: name %q: want a tag, not a digest", ErrInvalidImage, name)
	}
	return tagged, nil
}

// entry is one layer tar entry, keyed by its path without the leading "/".
type entry struct {
	mode     fs.FileMode
	data     []byte
	linkname string
}

// layerEntries is the layer's content: the standard entries, then img's.
func layerEntries(img Image, pctest []byte) (map[string]entry, error) {
	dir := func(perm fs.FileMode) entry { return entry{mode: fs.ModeDir | perm} }
	file := func(perm fs.FileMode, data []byte) entry { return entry{mode: perm, data: data} }
	e := map[string]entry{
		"etc":             dir(0o755),
		"etc/passwd":      file(0o644, []byte(passwd)),
		"etc/group":       file(0o644, []byte(group)),
		"home":            dir(0o755),
		"root":            dir(0o700),
		"tmp":             dir(0o777 | fs.ModeSticky),
		"usr":             dir(0o755),
		"usr/bin":         dir(0o755),
		"usr/bin/python3": {mode: fs.ModeSymlink | 0o777, linkname: "/pctest"},
		"usr/bin/python":  {mode: fs.ModeSymlink | 0o777, linkname: "/pctest"},
		"pctest":          file(0o755, pctest),
	}
	if !img.OmitProcessingContainer {
		pc := img.ProcessingContainer
		if pc == nil {
			pc = DefaultProcessingContainer()
		}
		e["processing-container.json"] = file(0o644, pc)
	}
	for _, f := range img.Files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return nil, fmt.Errorf("%w: file path %q: want an absolute clean path other than /", ErrInvalidImage, f.Path)
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if t := mode.Type(); t != 0 && t != fs.ModeDir && t != fs.ModeSymlink {
			return nil, fmt.Errorf("%w: file %q: unsupported mode %v", ErrInvalidImage, f.Path, mode)
		}
		if mode.Type() == fs.ModeSymlink && f.Linkname == "" {
			return nil, fmt.Errorf("%w: file %q: symbolic link without Linkname", ErrInvalidImage, f.Path)
		}
		rel := strings.TrimPrefix(f.Path, "/")
		e[rel] = entry{mode: mode, data: f.Data, linkname: f.Linkname}
		for p := path.Dir(rel); p != "."; p = path.Dir(p) {
			if _, ok := e[p]; !ok {
				e[p] = dir(0o755)
			}
		}
	}
	return e, nil
}

const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
	group  = "root:x:0:\nnogroup:x:65534:\n"
)

// writeLayer writes entries as an uncompressed tar, parents first.
func writeLayer(entries map[string]entry) ([]byte, error) {
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names) // a parent sorts before its children
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := entries[n]
		hdr := &tar.Header{
			Name:    n,
			Mode:    int64(e.mode.Perm()),
			ModTime: epoch,
		}
		if e.mode&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		switch e.mode.Type() {
		case fs.ModeDir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, n+"/"
		case fs.ModeSymlink:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.linkname
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sha256Hex is the hex digest used in docker-archive file names.
func sha256Hex(b []byte) string {
	return fmt.Sprintf("%x", sha256.Sum256(b))
}
