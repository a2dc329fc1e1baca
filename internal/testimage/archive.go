package testimage

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/distribution/reference"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Format is an image archive format.
type Format int

const (
	// FormatOCI is an OCI image layout in a tar: oci-layout, index.json
	// (naming the image in both org.opencontainers.image.ref.name, the
	// tag, and io.containerd.image.name, the full reference), and
	// blobs/sha256/… with a gzip layer.
	FormatOCI Format = iota
	// FormatDockerArchive is what `docker save` wrote before Docker 25:
	// manifest.json with RepoTags, the config as <hex>.json and the
	// uncompressed layer as <hex>/layer.tar.
	FormatDockerArchive
)

// String returns "oci" or "docker-archive".
func (f Format) String() string {
	switch f {
	case FormatOCI:
		return "oci"
	case FormatDockerArchive:
		return "docker-archive"
	default:
		return fmt.Sprintf("Format(%d)", int(f))
	}
}

// Write writes b in format f.
func (b *Built) Write(w io.Writer, f Format) error {
	switch f {
	case FormatOCI:
		return b.WriteOCI(w)
	case FormatDockerArchive:
		return b.WriteDockerArchive(w)
	default:
		return fmt.Errorf("%w: unknown format %v", ErrInvalidImage, f)
	}
}

// WriteOCI writes b as an OCI image-layout tarball.
func (b *Built) WriteOCI(w io.Writer) error {
	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{b.ManifestDesc},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}
	layout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := writeTarEntry(tw, d, nil); err != nil {
			return err
		}
	}
	files := []struct {
		name string
		data []byte
	}{
		{"blobs/sha256/" + b.ConfigDesc.Digest.Encoded(), b.config},
		{"blobs/sha256/" + b.LayerDesc.Digest.Encoded(), b.layerGz},
		{"blobs/sha256/" + b.ManifestDesc.Digest.Encoded(), b.manifest},
		{ocispec.ImageLayoutFile, layout},
		{ocispec.ImageIndexFile, indexJSON},
	}
	for _, f := range files {
		if err := writeTarEntry(tw, f.name, f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// dockerManifest is one entry of a docker-archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// WriteDockerArchive writes b as a docker-archive tarball.
func (b *Built) WriteDockerArchive(w io.Writer) error {
	named, err := reference.ParseNormalizedNamed(b.Name)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidImage, err)
	}
	configName := b.ConfigDesc.Digest.Encoded() + ".json"
	layerDir := sha256Hex(b.layerTar)
	manifest, err := json.Marshal([]dockerManifest{{
		Config:   configName,
		RepoTags: []string{reference.FamiliarString(named)},
		Layers:   []string{layerDir + "/layer.tar"},
	}})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	entries := []struct {
		name string
		data []byte
	}{
		{layerDir + "/", nil},
		{layerDir + "/VERSION", []byte("1.0")},
		{layerDir + "/layer.tar", b.layerTar},
		{configName, b.config},
		{"manifest.json", manifest},
	}
	for _, e := range entries {
		if err := writeTarEntry(tw, e.name, e.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// writeTarEntry writes a directory (name ending in "/") or a 0644 file.
func writeTarEntry(tw *tar.Writer, name string, data []byte) error {
	hdr := &tar.Header{Name: name, Mode: 0o644, ModTime: epoch, Typeflag: tar.TypeReg, Size: int64(len(data))}
	if name[len(name)-1] == '/' {
		hdr.Mode, hdr.Typeflag, hdr.Size = 0o755, tar.TypeDir, 0
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// WriteFile builds img and writes it to path in format f.
func WriteFile(ctx context.Context, path string, img Image, f Format) (*Built, error) {
	b, err := Build(ctx, img)
	if err != nil {
		return nil, err
	}
	out, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := b.Write(out, f); err != nil {
		out.Close()
		return nil, err
	}
	return b, out.Close()
}

// Archive builds img, writes it in format f into a file under t.TempDir()
// and returns the file's path; it fails t on any error.
func Archive(t testing.TB, img Image, f Format) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image-"+f.String()+".tar")
	if _, err := WriteFile(t.Context(), path, img, f); err != nil {
		t.Fatalf("testimage.Archive: %v", err)
	}
	return path
}
