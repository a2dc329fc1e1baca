package runtime

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strings"
	"sync/atomic"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImportLimits bound what one Import may read, store and hold in memory.
// A zero field takes its value from DefaultImportLimits.
type ImportLimits struct {
	// MaxBytes caps the archive's decompressed size: the bytes of its tar
	// stream.
	MaxBytes int64
	// MaxEntries caps the entries (files, directories, links) of the
	// archive's tar stream.
	MaxEntries int
	// MaxBlobBytes caps the size of any one file in the archive (a layer,
	// a config, a manifest).
	MaxBlobBytes int64
	// MaxJSONBytes caps the size of any one JSON document read into
	// memory: oci-layout, index.json, manifest.json, and every image
	// index, manifest and config the import reads.
	MaxJSONBytes int64
	// MaxUnpackedBytes caps the total size of the files in the archive's
	// layers (every file in it that is a tar, or a gzip- or
	// zstd-compressed tar), as they would be unpacked: a compressed layer
	// that inflates without bound is refused before containerd unpacks
	// it.
	MaxUnpackedBytes int64
	// MaxUnpackedEntries caps the total number of entries in those
	// layers.
	MaxUnpackedEntries int
	// MaxCompressionRatio caps how many times larger than its compressed
	// form a compressed archive, and the import's compressed layers
	// taken together, may decompress to, once more than RatioFloor bytes
	// have come out: a gzip bomb stops at about RatioFloor bytes, whatever
	// the size limits.
	MaxCompressionRatio int64
}

// RatioFloor is how many decompressed bytes (of the archive, and of its
// layers) pass before MaxCompressionRatio is checked: small streams of
// zeros compress well and harm no one.
const RatioFloor = 64 << 20

// DefaultImportLimits are the limits Import applies where ImportLimits
// leaves a field zero. They match the daemon's [images] defaults.
var DefaultImportLimits = ImportLimits{
	MaxBytes:           32 << 30,
	MaxEntries:         100000,
	MaxBlobBytes:       16 << 30,
	MaxJSONBytes:       8 << 20,
	MaxUnpackedBytes:   64 << 30,
	MaxUnpackedEntries: 2000000,

	MaxCompressionRatio: 100,
}

// Names of the import limits, as ImportLimitError.Limit gives them (the
// daemon's configuration keys in [images] have the same names).
const (
	LimitImportBytes      = "max_import_bytes"
	LimitImportEntries    = "max_import_entries"
	LimitBlobBytes        = "max_blob_bytes"
	LimitJSONBytes        = "max_json_bytes"
	LimitUnpackedBytes    = "max_unpacked_bytes"
	LimitUnpackedEntries  = "max_unpacked_entries"
	LimitCompressionRatio = "max_compression_ratio"
)

// withDefaults fills l's zero fields from DefaultImportLimits and refuses
// negative ones.
func (l ImportLimits) withDefaults() (ImportLimits, error) {
	if l.MaxBytes < 0 || l.MaxEntries < 0 || l.MaxBlobBytes < 0 || l.MaxJSONBytes < 0 || l.MaxUnpackedBytes < 0 || l.MaxUnpackedEntries < 0 || l.MaxCompressionRatio < 0 {
		return l, fmt.Errorf("%w: import limits %+v must not be negative", ErrInvalidArgument, l)
	}
	d := DefaultImportLimits
	if l.MaxBytes == 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxEntries == 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxBlobBytes == 0 {
		l.MaxBlobBytes = d.MaxBlobBytes
	}
	if l.MaxJSONBytes == 0 {
		l.MaxJSONBytes = d.MaxJSONBytes
	}
	if l.MaxUnpackedBytes == 0 {
		l.MaxUnpackedBytes = d.MaxUnpackedBytes
	}
	if l.MaxUnpackedEntries == 0 {
		l.MaxUnpackedEntries = d.MaxUnpackedEntries
	}
	if l.MaxCompressionRatio == 0 {
		l.MaxCompressionRatio = d.MaxCompressionRatio
	}
	return l, nil
}

// ImportLimitError is returned (wrapping ErrImportLimit) when an archive
// passes one of its import's limits.
type ImportLimitError struct {
	// Limit names the limit passed: one of the Limit* constants.
	Limit string
	// Max is the limit's value (bytes, or entries).
	Max int64
	// What says what passed it.
	What string
}

func (e *ImportLimitError) Error() string {
	return fmt.Sprintf("image archive refused: %s passes %s (%d)", e.What, e.Limit, e.Max)
}

// Unwrap makes the error match ErrImportLimit.
func (e *ImportLimitError) Unwrap() error { return ErrImportLimit }

// importGuard reads an import's decompressed tar stream on behalf of
// containerd's importer and checks it as it passes: the total size, the
// number of entries, each entry's size, the size of the archive's JSON
// files, that each blobs/<algorithm>/<hex> file holds what its name says,
// and, for each file that is a (compressed) tar, the size and number of
// the entries it would unpack to. The first problem stops the stream: every later Read fails with
// it, so containerd stores nothing more. It also notes which format's
// marker files it saw.
//
// The tar stream is parsed twice, by containerd and by the guard, from the
// same bytes: the guard sees every byte before containerd does (a tee into
// a pipe the guard's goroutine drains).
type importGuard struct {
	r      io.Reader // what containerd reads
	pr     *io.PipeReader
	pw     *io.PipeWriter
	done   chan struct{}
	limits ImportLimits

	// Set by the guard's goroutine, read after done is closed (or, for
	// the byte count, by the reading goroutine only).
	read           int64 // by the reading goroutine
	readErr        error // by the reading goroutine: the byte limit
	err            error // the first problem (ImportLimitError or ErrInvalidArchive)
	ociLayout      bool
	dockerManifest bool
	entries        int
	unpackedBytes  int64
	unpackedCount  int

	// compressed counts the bytes of the compressed archive read so far
	// (the decompressor may read it from another goroutine); nil when
	// the archive is not compressed.
	compressed *atomic.Int64
	// layerIn and layerOut count the compressed layers' bytes in and out
	// of their decompressors, across the import.
	layerIn, layerOut int64
}

// newImportGuard guards the decompressed archive stream r. compressed, when
// not nil, counts the bytes of the compressed stream r comes from.
func newImportGuard(r io.Reader, limits ImportLimits, compressed *atomic.Int64) *importGuard {
	pr, pw := io.Pipe()
	g := &importGuard{pr: pr, pw: pw, done: make(chan struct{}), limits: limits, compressed: compressed}
	g.r = io.TeeReader(&countingReader{r: r, g: g}, pw)
	go g.scan()
	return g
}

func (g *importGuard) Read(p []byte) (int, error) { return g.r.Read(p) }

// countingReader fails the stream once more than MaxBytes have been read.
type countingReader struct {
	r io.Reader
	g *importGuard
}

func (c *countingReader) Read(p []byte) (int, error) {
	// Never read more than one byte past the limit, so the cap is exact.
	if left := c.g.limits.MaxBytes + 1 - c.g.read; int64(len(p)) > left {
		p = p[:max(left, 0)]
	}
	if len(p) == 0 {
		err := &ImportLimitError{Limit: LimitImportBytes, Max: c.g.limits.MaxBytes,
			What: fmt.Sprintf("the archive's decompressed size (more than %d bytes)", c.g.limits.MaxBytes)}
		c.g.readErr = err
		c.g.pr.CloseWithError(err)
		return 0, err
	}
	n, err := c.r.Read(p)
	c.g.read += int64(n)
	if cmp := c.g.compressed; cmp != nil && c.g.read > RatioFloor && c.g.limits.MaxCompressionRatio > 0 {
		if in := cmp.Load(); c.g.read > c.g.limits.MaxCompressionRatio*max(in, 1) {
			lerr := &ImportLimitError{Limit: LimitCompressionRatio, Max: c.g.limits.MaxCompressionRatio,
				What: fmt.Sprintf("the archive's compression ratio (%d bytes out of %d)", c.g.read, in)}
			c.g.readErr = lerr
			c.g.pr.CloseWithError(lerr)
			return 0, lerr
		}
	}
	return n, err
}

// layerCounter counts the bytes read through it.
type layerCounter struct {
	r io.Reader
	n *int64
}

func (c layerCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// ratioReader fails a layer's decompressed stream once the import's
// compressed layers have inflated more than MaxCompressionRatio times.
type ratioReader struct {
	r    io.Reader
	g    *importGuard
	name string
}

func (r ratioReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	g := r.g
	g.layerOut += int64(n)
	if g.layerOut > RatioFloor && g.limits.MaxCompressionRatio > 0 && g.layerOut > g.limits.MaxCompressionRatio*max(g.layerIn, 1) {
		return n, &ImportLimitError{Limit: LimitCompressionRatio, Max: g.limits.MaxCompressionRatio,
			What: fmt.Sprintf("the compression ratio of the archive's layers (%d bytes out of %d, in %q)", g.layerOut, g.layerIn, truncate(r.name, 80))}
	}
	return n, err
}

// scan parses the tar stream from the pipe until it ends or a check fails.
func (g *importGuard) scan() {
	defer close(g.done)
	fail := func(err error) {
		g.err = err
		g.pr.CloseWithError(err)
	}
	tr := tar.NewReader(g.pr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !isGuardStop(err) {
				fail(fmt.Errorf("%w: not a readable tar stream: %s", ErrInvalidArchive, err.Error()))
			}
			return
		}
		g.entries++
		name := path.Clean(hdr.Name)
		if g.entries > g.limits.MaxEntries {
			fail(&ImportLimitError{Limit: LimitImportEntries, Max: int64(g.limits.MaxEntries),
				What: fmt.Sprintf("the archive's entry count (entry %d, %q)", g.entries, truncate(name, 80))})
			return
		}
		switch name {
		case ocispec.ImageLayoutFile:
			g.ociLayout = true
		case "manifest.json":
			g.dockerManifest = true
		}
		if hdr.Size > g.limits.MaxBlobBytes {
			fail(&ImportLimitError{Limit: LimitBlobBytes, Max: g.limits.MaxBlobBytes,
				What: fmt.Sprintf("%q (%d bytes)", truncate(name, 80), hdr.Size)})
			return
		}
		if isArchiveJSON(name) && hdr.Size > g.limits.MaxJSONBytes {
			fail(&ImportLimitError{Limit: LimitJSONBytes, Max: g.limits.MaxJSONBytes,
				What: fmt.Sprintf("%q (%d bytes)", name, hdr.Size)})
			return
		}
		//nolint:staticcheck // old tars use TypeRegA
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			continue
		}
		want, h := blobDigest(name)
		var src io.Reader = tr
		if h != nil {
			src = io.TeeReader(tr, h)
		}
		br := bufio.NewReaderSize(src, 64<<10)
		if err := g.scanLayer(name, br); err != nil {
			fail(err)
			return
		}
		if _, err := io.Copy(io.Discard, br); err != nil {
			if !isGuardStop(err) {
				fail(fmt.Errorf("%w: %q is cut short: %s", ErrInvalidArchive, truncate(name, 80), err.Error()))
			}
			return
		}
		if h != nil {
			if got := digest.NewDigest(want.Algorithm(), h); got != want {
				fail(fmt.Errorf("%w: %q holds content of digest %s", ErrInvalidArchive, name, got))
				return
			}
		}
	}
	// Whatever follows the tar's end is not read by containerd either;
	// drain it so the tee never blocks.
	_, _ = io.Copy(io.Discard, g.pr)
}

// errConsumerDone closes the guard's pipe when containerd stops reading:
// whatever it did not read is not the guard's business (a stream cut short
// is reported by containerd's own error).
var errConsumerDone = errors.New("import stream no longer read")

// zstdMaxWindow is the largest zstd window the guard decodes with: the
// memory one import's layer scan may take.
const zstdMaxWindow = 128 << 20

// tarMagicOffset is where a POSIX or GNU tar header holds "ustar".
const tarMagicOffset = 257

// scanLayer counts the entries a layer would unpack to, and their sizes,
// against the unpacked limits, when the file at r is a tar or a gzip- or
// zstd-compressed tar; other files (configs, manifests, anything) are left
// alone. It returns only its own limits' errors: it reads r only as far as
// it needs, and a file that turns out not to be a whole tar (or a stream
// that stops) is left to the caller, which reads the rest of the file.
func (g *importGuard) scanLayer(name string, r *bufio.Reader) error {
	head, _ := r.Peek(tarMagicOffset + 8)
	in := layerCounter{r: r, n: &g.layerIn}
	var layer io.Reader
	switch compression.DetectCompression(head) {
	case compression.Gzip:
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil
		}
		defer zr.Close()
		layer = ratioReader{r: zr, g: g, name: name}
	case compression.Zstd:
		// A frame may ask for a window of up to 512 MiB by default;
		// zstd's own tools write at most 128 MiB (--long=27).
		zr, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil
		}
		defer zr.Close()
		layer = ratioReader{r: zr, g: g, name: name}
	default:
		if len(head) < tarMagicOffset+5 || string(head[tarMagicOffset:tarMagicOffset+5]) != "ustar" {
			return nil
		}
		layer = r
	}
	tr := tar.NewReader(layer)
	for {
		hdr, err := tr.Next()
		var le *ImportLimitError
		if errors.As(err, &le) {
			return err // the ratio
		}
		if err != nil {
			// The end, or not (all) a tar, or the stream stopped:
			// reading the rest of the file tells which.
			return nil
		}
		g.unpackedCount++
		if g.unpackedCount > g.limits.MaxUnpackedEntries {
			return &ImportLimitError{Limit: LimitUnpackedEntries, Max: int64(g.limits.MaxUnpackedEntries),
				What: fmt.Sprintf("the entries of the archive's layers (entry %d, %q in %q)", g.unpackedCount, truncate(hdr.Name, 80), truncate(name, 80))}
		}
		if hdr.Size > g.limits.MaxUnpackedBytes-g.unpackedBytes {
			return &ImportLimitError{Limit: LimitUnpackedBytes, Max: g.limits.MaxUnpackedBytes,
				What: fmt.Sprintf("the unpacked size of the archive's layers (%q in %q is %d bytes, after %d)", truncate(hdr.Name, 80), truncate(name, 80), hdr.Size, g.unpackedBytes)}
		}
		g.unpackedBytes += hdr.Size
	}
}

// isGuardStop reports whether err is the guard's own stop (the pipe was
// closed with a limit error, or by finish) rather than a problem in the
// archive.
func isGuardStop(err error) bool {
	return errors.Is(err, ErrImportLimit) || errors.Is(err, errConsumerDone) || errors.Is(err, io.ErrClosedPipe)
}

// finish stops the guard once containerd is done with the stream and
// returns the first problem found (nil when none). It must be called from
// the goroutine that read the stream.
func (g *importGuard) finish() error {
	g.pw.CloseWithError(errConsumerDone)
	<-g.done
	if g.err != nil {
		return g.err
	}
	return g.readErr
}

// format returns the format whose marker file the guard saw ("" when
// neither).
func (g *importGuard) format() ImportFormat {
	switch {
	case g.ociLayout:
		return FormatOCI
	case g.dockerManifest:
		return FormatDocker
	}
	return ""
}

// isArchiveJSON reports whether name is one of the JSON files containerd's
// importer decodes straight from the tar stream or reads whole.
func isArchiveJSON(name string) bool {
	switch name {
	case ocispec.ImageLayoutFile, ocispec.ImageIndexFile, "manifest.json", "repositories":
		return true
	}
	return false
}

// blobDigest returns the digest an OCI layout's blob file name promises
// (blobs/<algorithm>/<encoded>) and a hash to check it with; nil when name
// is not such a file.
func blobDigest(name string) (digest.Digest, hash.Hash) {
	rest, ok := strings.CutPrefix(name, ocispec.ImageBlobsDir+"/")
	if !ok {
		return "", nil
	}
	alg, enc, ok := strings.Cut(rest, "/")
	if !ok {
		return "", nil
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), enc)
	if d.Validate() != nil {
		return "", nil
	}
	return d, d.Algorithm().Hash()
}

// jsonLimitedStore is the content store an import reads through: an image
// index, manifest or config larger than max is refused before it is read
// into memory (containerd reads such documents whole).
type jsonLimitedStore struct {
	content.Store
	max int64
}

func (s jsonLimitedStore) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	ra, err := s.Store.ReaderAt(ctx, desc)
	if err != nil {
		return nil, err
	}
	if isJSONMediaType(desc.MediaType) && ra.Size() > s.max {
		ra.Close()
		return nil, &ImportLimitError{Limit: LimitJSONBytes, Max: s.max,
			What: fmt.Sprintf("%s %s (%d bytes)", desc.MediaType, desc.Digest, ra.Size())}
	}
	return ra, nil
}

// isJSONMediaType reports whether content of media type mt is read whole
// as JSON (image indexes, manifests, configs).
func isJSONMediaType(mt string) bool {
	return images.IsIndexType(mt) || images.IsManifestType(mt) || images.IsKnownConfig(mt)
}
