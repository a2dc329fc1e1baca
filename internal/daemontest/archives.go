package daemontest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/pcnode/pcnode/internal/testimage"
)

// bombChunk is the run of zeros one gzip member of a bomb holds.
const bombChunk = 4 << 20

// gzipMember compresses b as one gzip member (gzip streams may be
// concatenated members; they decompress to the concatenation).
func gzipMember(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// tarHeader returns the tar header block(s) of a regular file of size
// bytes, without its content.
func tarHeader(t testing.TB, name string, size int64) []byte {
	t.Helper()
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	return hdr.Bytes()
}

// GzipBomb returns a gzip-compressed archive stream that decompresses to
// copies tar entries named name, each of entry zero bytes (entry a
// multiple of 4 MiB): about 4 KiB of gzip for every 4 MiB, built in
// milliseconds. The tar has no end: an importer must stop before it.
func GzipBomb(t testing.TB, name string, entry int64, copies int) []byte {
	t.Helper()
	zeros := gzipMember(t, make([]byte, bombChunk))
	one := gzipMember(t, tarHeader(t, name, entry))
	one = append(one, bytes.Repeat(zeros, int(entry/bombChunk))...)
	return bytes.Repeat(one, copies)
}

// GzipLayerBomb returns a valid gzip-compressed layer: a tar with one file
// "zeros" of size zero bytes (a multiple of 4 MiB), at about 1 KiB of gzip
// per MiB. LayerBombDiffID is its uncompressed digest.
func GzipLayerBomb(t testing.TB, size int64) []byte {
	t.Helper()
	layer := gzipMember(t, tarHeader(t, "zeros", size))
	layer = append(layer, bytes.Repeat(gzipMember(t, make([]byte, bombChunk)), int(size/bombChunk))...)
	return append(layer, gzipMember(t, make([]byte, 1024))...) // the tar's end: two zero blocks
}

// LayerBombDiffID returns the diff id (digest of the uncompressed tar) of
// GzipLayerBomb(t, size); it hashes size bytes.
func LayerBombDiffID(t testing.TB, size int64) digest.Digest {
	t.Helper()
	d := digest.Canonical.Digester()
	d.Hash().Write(tarHeader(t, "zeros", size))
	chunk := make([]byte, bombChunk)
	for range size / bombChunk {
		d.Hash().Write(chunk)
	}
	d.Hash().Write(make([]byte, 1024))
	return d.Digest()
}

// WithLayer rewrites b's OCI archive (as b.WriteOCI writes it) so that its
// manifest names layer (gzip-compressed) as its only layer. With a diffID
// the config names it as the layer's uncompressed digest; with "" it keeps
// the old one, so unpacking fails.
func WithLayer(t testing.TB, b *testimage.Built, archive, layer []byte, diffID digest.Digest) []byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if files[hdr.Name], err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
	m := b.Manifest
	cfgName := "blobs/sha256/" + b.ConfigDesc.Digest.Encoded()
	cfg := files[cfgName]
	if diffID != "" {
		c := b.Config
		c.RootFS.DiffIDs = []digest.Digest{diffID}
		cfg, _ = json.Marshal(c)
		m.Config.Digest, m.Config.Size = digest.FromBytes(cfg), int64(len(cfg))
		cfgName = "blobs/sha256/" + m.Config.Digest.Encoded()
	}
	m.Layers = []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(layer), Size: int64(len(layer))}}
	mb, _ := json.Marshal(m)
	md := b.ManifestDesc
	md.Digest, md.Size = digest.FromBytes(mb), int64(len(mb))
	ib, _ := json.Marshal(ocispec.Index{Versioned: m.Versioned, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{md}})
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{ocispec.ImageLayoutFile, files[ocispec.ImageLayoutFile]},
		{cfgName, cfg},
		{"blobs/sha256/" + digest.FromBytes(layer).Encoded(), layer},
		{"blobs/sha256/" + md.Digest.Encoded(), mb},
		{ocispec.ImageIndexFile, ib},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
