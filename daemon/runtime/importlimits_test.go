package runtime

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"

	"github.com/pcnode/pcnode/internal/daemontest"
)

type tarFile struct {
	name string
	data []byte
	size int64 // header size when not len(data) (a lying header)
}

func makeTar(t testing.TB, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		size := int64(len(f.data))
		if f.size != 0 {
			size = f.size
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil && f.size == 0 {
			t.Fatal(err)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// consume reads r as containerd's importer does: every entry to the end.
func consume(r io.Reader) (int64, error) {
	cr := &countReader{r: r}
	tr := tar.NewReader(cr)
	for {
		_, err := tr.Next()
		if err == io.EOF {
			return cr.n, nil
		}
		if err != nil {
			return cr.n, err
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return cr.n, err
		}
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func blobName(data []byte) string { return "blobs/sha256/" + digest.FromBytes(data).Encoded() }

func TestImportGuard(t *testing.T) {
	small := ImportLimits{MaxBytes: 1 << 20, MaxEntries: 8, MaxBlobBytes: 256 << 10, MaxJSONBytes: 4 << 10}
	layer := bytes.Repeat([]byte("layer"), 1000)
	good := makeTar(t,
		tarFile{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		tarFile{name: "index.json", data: []byte(`{}`)},
		tarFile{name: blobName(layer), data: layer},
	)
	var many []tarFile
	for i := range 9 {
		many = append(many, tarFile{name: "f" + strings.Repeat("x", i), data: []byte("x")})
	}
	var big []tarFile
	for i := range 6 {
		big = append(big, tarFile{name: "big" + strings.Repeat("x", i), data: make([]byte, 200<<10)})
	}
	tests := []struct {
		name      string
		archive   []byte
		limit     string // the ImportLimitError's Limit, or
		invalid   bool   // ErrInvalidArchive
		maxRead   int64  // most bytes the consumer may see (0: any)
		wantOCI   bool
		consumerE bool // the consumer's read fails
		eitherE   bool // the consumer's read may fail (the guard fails as it ends)
	}{
		{name: "valid", archive: good, wantOCI: true},
		{name: "too many entries", archive: makeTar(t, many...), limit: LimitImportEntries, consumerE: true},
		{name: "decompressed size", archive: makeTar(t, big...), limit: LimitImportBytes,
			maxRead: small.MaxBytes + 1, consumerE: true},
		{name: "one blob too large", archive: makeTar(t, tarFile{name: "blobs/sha256/" + strings.Repeat("a", 64), data: make([]byte, 300<<10)}),
			limit: LimitBlobBytes, maxRead: 64 << 10, consumerE: true},
		{name: "index.json too large", archive: makeTar(t, tarFile{name: "index.json", data: make([]byte, 5<<10)}), limit: LimitJSONBytes, consumerE: true},
		{name: "manifest.json too large", archive: makeTar(t, tarFile{name: "./manifest.json", data: make([]byte, 5<<10)}), limit: LimitJSONBytes, consumerE: true},
		{name: "digest mismatch", archive: makeTar(t, tarFile{name: blobName([]byte("other")), data: layer}), invalid: true, eitherE: true},
		{name: "not a tar", archive: bytes.Repeat([]byte("not a tarball "), 1000), invalid: true, consumerE: true},
		{name: "header lies about size", archive: makeTar(t, tarFile{name: "short", data: []byte("abc"), size: 100 << 10}), consumerE: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newImportGuard(bytes.NewReader(tt.archive), small, nil)
			n, cerr := consume(g)
			err := g.finish()
			if (cerr != nil) != tt.consumerE && !tt.eitherE {
				t.Errorf("consumer error = %v, want error %v", cerr, tt.consumerE)
			}
			var le *ImportLimitError
			switch {
			case tt.limit != "":
				if !errors.As(err, &le) || le.Limit != tt.limit || !errors.Is(err, ErrImportLimit) {
					t.Fatalf("finish() = %v, want ImportLimitError %s", err, tt.limit)
				}
				if !errors.As(cerr, &le) {
					t.Errorf("consumer error = %v, want the limit error", cerr)
				}
			case tt.invalid:
				if !errors.Is(err, ErrInvalidArchive) {
					t.Fatalf("finish() = %v, want ErrInvalidArchive", err)
				}
			default:
				if err != nil {
					t.Fatalf("finish() = %v, want nil", err)
				}
			}
			if tt.maxRead > 0 && n > tt.maxRead {
				t.Errorf("consumer read %d bytes, want at most %d", n, tt.maxRead)
			}
			if got := g.format() == FormatOCI; got != tt.wantOCI {
				t.Errorf("format() = %q, want OCI %v", g.format(), tt.wantOCI)
			}
		})
	}
}

// layerOf returns a tar of entries (name, size) with zero content,
// compressed by comp ("gzip", "zstd" or "" for none).
func layerOf(t testing.TB, comp string, entries ...tarFile) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: e.size, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(make([]byte, e.size)); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	var out bytes.Buffer
	switch comp {
	case "gzip":
		zw := gzip.NewWriter(&out)
		zw.Write(raw.Bytes())
		zw.Close()
	case "zstd":
		zw, err := zstd.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(raw.Bytes())
		zw.Close()
	default:
		return raw.Bytes()
	}
	return out.Bytes()
}

func TestImportGuardLayers(t *testing.T) {
	limits := ImportLimits{MaxBytes: 64 << 20, MaxEntries: 100, MaxBlobBytes: 64 << 20, MaxJSONBytes: 1 << 20,
		MaxUnpackedBytes: 1 << 20, MaxUnpackedEntries: 50, MaxCompressionRatio: 100}
	bomb := layerOf(t, "gzip", tarFile{name: "zeros", size: 3 << 19})
	var many []tarFile
	for i := range 60 {
		many = append(many, tarFile{name: fmt.Sprintf("f%d", i)})
	}
	var gzJSON bytes.Buffer
	zw := gzip.NewWriter(&gzJSON)
	zw.Write(bytes.Repeat([]byte(`{"a":1}`), 1<<17))
	zw.Close()
	tests := []struct {
		name  string
		files []tarFile
		limit string
	}{
		{"gzip layer bomb", []tarFile{{name: blobName(bomb), data: bomb}}, LimitUnpackedBytes},
		{"zstd layer bomb", []tarFile{{name: "layer.tar.zst", data: layerOf(t, "zstd", tarFile{name: "zeros", size: 3 << 19})}}, LimitUnpackedBytes},
		{"plain tar layer", []tarFile{{name: "abc/layer.tar", data: layerOf(t, "", tarFile{name: "zeros", size: 3 << 19})}}, LimitUnpackedBytes},
		{"layers add up", []tarFile{
			{name: "l1", data: layerOf(t, "gzip", tarFile{name: "a", size: 600 << 10})},
			{name: "l2", data: layerOf(t, "gzip", tarFile{name: "b", size: 600 << 10})},
		}, LimitUnpackedBytes},
		{"too many layer entries", []tarFile{{name: "l", data: layerOf(t, "gzip", many...)}}, LimitUnpackedEntries},
		{"within the limits", []tarFile{{name: "l", data: layerOf(t, "gzip", tarFile{name: "a", size: 900 << 10})}}, ""},
		{"gzip that is no tar", []tarFile{{name: "x.json.gz", data: gzJSON.Bytes()}}, ""},
	}
	// Within the unpacked limits, but 1000 times its compressed size.
	ratioBomb := daemontest.GzipLayerBomb(t, 96<<20)
	tests = append(tests, struct {
		name  string
		files []tarFile
		limit string
	}{"layer compression ratio", []tarFile{{name: "l", data: ratioBomb}}, LimitCompressionRatio})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := limits
			if tt.limit == LimitCompressionRatio {
				l.MaxUnpackedBytes = 1 << 30
			}
			g := newImportGuard(bytes.NewReader(makeTar(t, tt.files...)), l, nil)
			_, cerr := consume(g)
			err := g.finish()
			var le *ImportLimitError
			if tt.limit == "" {
				if err != nil || cerr != nil {
					t.Fatalf("finish() = %v (consumer %v), want nil", err, cerr)
				}
				return
			}
			if !errors.As(err, &le) || le.Limit != tt.limit {
				t.Fatalf("finish() = %v, want ImportLimitError %s", err, tt.limit)
			}
		})
	}
}

func TestImportLimitsDefaults(t *testing.T) {
	got, err := ImportLimits{MaxEntries: 5}.withDefaults()
	if err != nil || got.MaxEntries != 5 || got.MaxBytes != DefaultImportLimits.MaxBytes || got.MaxJSONBytes != DefaultImportLimits.MaxJSONBytes {
		t.Errorf("withDefaults() = %+v, %v", got, err)
	}
	if _, err := (ImportLimits{MaxBytes: -1}).withDefaults(); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("withDefaults(negative) = %v, want ErrInvalidArgument", err)
	}
}

func TestBlobDigest(t *testing.T) {
	d := digest.FromString("x")
	var big []tarFile
	for i := range 6 {
		big = append(big, tarFile{name: "big" + strings.Repeat("x", i), data: make([]byte, 200<<10)})
	}
	tests := []struct {
		name string
		want digest.Digest
	}{
		{"blobs/sha256/" + d.Encoded(), d},
		{"blobs/sha256/short", ""},
		{"blobs/md5/" + d.Encoded(), ""},
		{"index.json", ""},
		{"blobs/sha256", ""},
	}
	for _, tt := range tests {
		got, h := blobDigest(tt.name)
		if got != tt.want || (h != nil) != (tt.want != "") {
			t.Errorf("blobDigest(%q) = %q, %v, want %q", tt.name, got, h != nil, tt.want)
		}
	}
}

// BenchmarkImportGuard measures the guard's throughput on an archive with
// one gzip layer of 32 MiB of hex text (compressing about 2:1, as layers
// do): it hashes, decompresses and parses every layer on top of what
// containerd does. MB/s is of the archive as sent.
func BenchmarkImportGuard(b *testing.B) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 32 {
		data := make([]byte, 1<<20)
		for j := range data {
			data[j] = "0123456789abcdef"[rnd.IntN(16)]
		}
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%d", i), Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	tw.Close()
	var layer bytes.Buffer
	zw := gzip.NewWriter(&layer)
	zw.Write(raw.Bytes())
	zw.Close()
	var archive bytes.Buffer
	aw := tar.NewWriter(&archive)
	aw.WriteHeader(&tar.Header{Name: blobName(layer.Bytes()), Mode: 0o644, Size: int64(layer.Len()), Typeflag: tar.TypeReg})
	aw.Write(layer.Bytes())
	aw.Close()
	b.SetBytes(int64(archive.Len()))
	b.ResetTimer()
	for range b.N {
		g := newImportGuard(bytes.NewReader(archive.Bytes()), DefaultImportLimits, nil)
		if _, err := consume(g); err != nil {
			b.Fatal(err)
		}
		if err := g.finish(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(raw.Len())/float64(archive.Len()), "ratio")
}

// TestImportGuardMutations feeds a thousand damaged archives (cut, bytes
// changed, doubled) through the guard as containerd would read them: it
// must never panic or hang, and never let the consumer read more than
// MaxBytes+1 bytes.
func TestImportGuardMutations(t *testing.T) {
	layer := layerOf(t, "gzip", tarFile{name: "a", size: 3000})
	seeds := [][]byte{
		makeTar(t, tarFile{name: "oci-layout", data: []byte(`{}`)}, tarFile{name: blobName(layer), data: layer}),
		makeTar(t, tarFile{name: "l", data: layerOf(t, "zstd", tarFile{name: "b", size: 10})}),
		makeTar(t, tarFile{name: "blobs/sha256/" + strings.Repeat("a", 64), data: []byte("x")}),
	}
	limits := ImportLimits{MaxBytes: 16 << 10, MaxEntries: 8, MaxBlobBytes: 16 << 10, MaxJSONBytes: 1 << 10,
		MaxUnpackedBytes: 32 << 10, MaxUnpackedEntries: 8, MaxCompressionRatio: 100}
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range 1000 {
		in := bytes.Clone(seeds[rnd.IntN(len(seeds))])
		switch rnd.IntN(3) {
		case 0:
			in = in[:rnd.IntN(len(in))]
		case 1:
			for range 1 + rnd.IntN(4) {
				in[rnd.IntN(len(in))] = byte(rnd.IntN(256))
			}
		case 2:
			in = append(in, in...)
		}
		done := make(chan int64, 1)
		go func() {
			g := newImportGuard(bytes.NewReader(in), limits, nil)
			n, _ := consume(g)
			g.finish()
			done <- n
		}()
		select {
		case n := <-done:
			if n > limits.MaxBytes+1 {
				t.Fatalf("mutation %d: consumer read %d bytes, limit %d", i, n, limits.MaxBytes)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("mutation %d (%d bytes) hangs: %q", i, len(in), in)
		}
	}
}

// FuzzScanLayer feeds arbitrary files to the guard's layer scan (gzip,
// zstd or plain tar detection, decompression, tar parsing): it must never
// panic, must keep its counts within the limits it reports, and must
// report only its own limits' errors.
func FuzzScanLayer(f *testing.F) {
	f.Add(layerOf(f, "gzip", tarFile{name: "a", size: 3000}))
	f.Add(layerOf(f, "zstd", tarFile{name: "b", size: 10}, tarFile{name: "c", size: 20}))
	f.Add(layerOf(f, "", tarFile{name: "d", size: 700}))
	f.Add([]byte("\x1f\x8b not really gzip"))
	limits := ImportLimits{MaxUnpackedBytes: 32 << 10, MaxUnpackedEntries: 8, MaxCompressionRatio: 100}
	f.Fuzz(func(t *testing.T, file []byte) {
		g := &importGuard{limits: limits}
		err := g.scanLayer("f", bufio.NewReader(bytes.NewReader(file)))
		if err != nil && !errors.Is(err, ErrImportLimit) {
			t.Fatalf("scanLayer = %v, want nil or a limit", err)
		}
		if err == nil && (g.unpackedBytes > limits.MaxUnpackedBytes || g.unpackedCount > limits.MaxUnpackedEntries) {
			t.Fatalf("scanLayer counted %d bytes, %d entries past its limits without an error", g.unpackedBytes, g.unpackedCount)
		}
	})
}
