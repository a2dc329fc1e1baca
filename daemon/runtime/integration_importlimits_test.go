package runtime

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
)

// limitsNamespace is where the import-limit tests work, alone, so that
// "nothing new in the content store" means exactly that.
const limitsNamespace = "pcnode-runtime-import-limits"

// storeState is what an import may leave in containerd's namespace.
type storeState struct {
	Content, Ingests, Leases, Images, Snapshots []string
}

func stateOf(t *testing.T, c *Containerd) storeState {
	t.Helper()
	ctx := c.ns(t.Context())
	var s storeState
	cs := c.client.ContentStore()
	if err := cs.Walk(ctx, func(i content.Info) error {
		s.Content = append(s.Content, i.Digest.String())
		return nil
	}); err != nil {
		t.Fatalf("content walk: %v", err)
	}
	sts, err := cs.ListStatuses(ctx)
	if err != nil {
		t.Fatalf("ListStatuses: %v", err)
	}
	for _, st := range sts {
		s.Ingests = append(s.Ingests, st.Ref)
	}
	ls, err := c.client.LeasesService().List(ctx)
	if err != nil {
		t.Fatalf("leases: %v", err)
	}
	for _, l := range ls {
		s.Leases = append(s.Leases, l.ID)
	}
	imgs, err := c.client.ImageService().List(ctx)
	if err != nil {
		t.Fatalf("images: %v", err)
	}
	for _, i := range imgs {
		s.Images = append(s.Images, i.Name)
	}
	if err := c.client.SnapshotService(c.cfg.Snapshotter).Walk(ctx, func(_ context.Context, i snapshots.Info) error {
		s.Snapshots = append(s.Snapshots, i.Name)
		return nil
	}); err != nil {
		t.Fatalf("snapshots: %v", err)
	}
	for _, l := range [][]string{s.Content, s.Ingests, s.Leases, s.Images, s.Snapshots} {
		slices.Sort(l)
	}
	return s
}

// ingestWatch records the most bytes containerd's ingests held at once
// while it runs: what a refused import had on disk at worst.
type ingestWatch struct {
	stop chan struct{}
	done chan struct{}
	max  int64
	seen bool // an ingest was seen at all
}

func watchIngests(t *testing.T, c *Containerd) *ingestWatch {
	w := &ingestWatch{stop: make(chan struct{}), done: make(chan struct{})}
	ctx := c.ns(t.Context())
	go func() {
		defer close(w.done)
		for {
			sts, err := c.client.ContentStore().ListStatuses(ctx)
			if err == nil {
				var sum int64
				for _, st := range sts {
					sum += st.Offset
				}
				w.max = max(w.max, sum)
				w.seen = w.seen || len(sts) > 0
			}
			select {
			case <-w.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *ingestWatch) end() (int64, bool) { close(w.stop); <-w.done; return w.max, w.seen }

// ociArchive builds a test image's OCI archive in memory.
func ociArchive(t *testing.T, name string) (*testimage.Built, []byte) {
	t.Helper()
	b, err := testimage.Build(t.Context(), testimage.Image{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := b.WriteOCI(&buf); err != nil {
		t.Fatal(err)
	}
	return b, buf.Bytes()
}

// dropEntry copies a tar archive without the entry called name.
func dropEntry(t *testing.T, in []byte, name string) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(in))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name == name {
			continue
		}
		tw.WriteHeader(hdr)
		io.Copy(tw, tr)
	}
	tw.Close()
	return out.Bytes()
}

// TestIntegrationImportLimits imports archives that pass each limit, and
// malformed ones, and checks each is refused with the right error and
// leaves containerd's namespace exactly as it was.
func TestIntegrationImportLimits(t *testing.T) {
	c := newRuntime(t, Config{Namespace: limitsNamespace}, nil)
	ctx := t.Context()
	built, good := ociArchive(t, "pcnode.test/rt-limits:1")
	layer := "blobs/sha256/" + built.LayerDesc.Digest.Encoded()
	layerBomb := daemontest.GzipLayerBomb(t, 1<<30)
	smallLayer, smallDiffID := daemontest.GzipLayerBomb(t, 8<<20), daemontest.LayerBombDiffID(t, 8<<20)

	// A "manifest" of 2 MiB: containerd would read it whole into memory.
	bigJSON := bytes.Repeat([]byte(" "), 2<<20)
	bigJSON[0] = '{'
	bigJSON[len(bigJSON)-1] = '}'
	bigDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(bigJSON), Size: int64(len(bigJSON)),
		Annotations: map[string]string{ocispec.AnnotationRefName: "pcnode.test/rt-limits:big"}}
	bigIndex, _ := json.Marshal(ocispec.Index{Versioned: built.Manifest.Versioned, Manifests: []ocispec.Descriptor{bigDesc}})
	bigManifest := rewriteTar(t, good, func(name string, data []byte) []byte {
		if name == ocispec.ImageIndexFile {
			return bigIndex
		}
		return data
	})
	// rewriteTar keeps names; add the big blob under its own name.
	var withBlob bytes.Buffer
	tw := tar.NewWriter(&withBlob)
	tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + bigDesc.Digest.Encoded(), Mode: 0o644, Size: bigDesc.Size, Typeflag: tar.TypeReg})
	tw.Write(bigJSON)
	tw.Flush()
	bigManifest = append(withBlob.Bytes(), bigManifest...)

	var manyEntries bytes.Buffer
	tw = tar.NewWriter(&manyEntries)
	for i := range 40 {
		tw.WriteHeader(&tar.Header{Name: strings.Repeat("d", 1+i%10) + "/" + time.Duration(i).String(), Mode: 0o644, Typeflag: tar.TypeReg})
	}
	tw.Close()

	limits := ImportLimits{MaxBytes: 64 << 20, MaxEntries: 20, MaxBlobBytes: 32 << 20, MaxJSONBytes: 1 << 20}
	tests := []struct {
		name    string
		archive []byte
		limits  ImportLimits
		limit   string // an ImportLimitError's Limit; "" : ErrInvalidArchive
	}{
		// 1 MiB of gzip that would be 1 GiB in one ingest.
		{name: "gzip bomb", archive: daemontest.GzipBomb(t, "blobs/sha256/"+strings.Repeat("0", 64), 1<<30, 1), limits: ImportLimits{MaxBytes: 16 << 20, MaxBlobBytes: 2 << 30}, limit: LimitImportBytes},
		// A 1 MiB gzip layer that unpacks to 1 GiB on the snapshotter.
		{name: "layer bomb", archive: daemontest.WithLayer(t, built, good, layerBomb, ""), limits: ImportLimits{MaxUnpackedBytes: 64 << 20}, limit: LimitUnpackedBytes},
		// The same bombs against the default limits: the compression
		// ratio stops both at about RatioFloor, far below the sizes.
		{name: "gzip bomb at the defaults", archive: daemontest.GzipBomb(t, "blobs/sha256/"+strings.Repeat("0", 64), 1<<30, 1), limit: LimitCompressionRatio},
		{name: "layer bomb at the defaults", archive: daemontest.WithLayer(t, built, good, layerBomb, ""), limit: LimitCompressionRatio},
		{name: "one blob over max_blob_bytes", archive: daemontest.GzipBomb(t, "blobs/sha256/"+strings.Repeat("0", 64), 1<<30, 1), limits: limits, limit: LimitBlobBytes},
		{name: "too many entries", archive: manyEntries.Bytes(), limits: limits, limit: LimitImportEntries},
		{name: "manifest over max_json_bytes", archive: bigManifest, limits: limits, limit: LimitJSONBytes},
		{name: "not a tar", archive: bytes.Repeat([]byte("garbage "), 4096), limits: limits},
		{name: "empty", archive: nil, limits: limits},
		{name: "truncated", archive: good[:len(good)*2/3], limits: limits},
		{name: "bad index.json", archive: rewriteTar(t, good, func(name string, data []byte) []byte {
			if name == ocispec.ImageIndexFile {
				return []byte(`{"manifests": [`)
			}
			return data
		}), limits: limits},
		{name: "missing layer blob", archive: dropEntry(t, good, layer), limits: limits},
		{name: "layer not its digest", archive: rewriteTar(t, good, func(name string, data []byte) []byte {
			if name == layer {
				return append(bytes.Clone(data), 0)
			}
			return data
		}), limits: limits},
		// Unpacking fails: the config's diff id is not the layer's.
		{name: "layer not its diff id", archive: daemontest.WithLayer(t, built, good, smallLayer, ""), limits: limits},
		{name: "descriptor size lies", archive: rewriteTar(t, good, func(name string, data []byte) []byte {
			if name != ocispec.ImageIndexFile {
				return data
			}
			var idx ocispec.Index
			json.Unmarshal(data, &idx)
			idx.Manifests[0].Size++
			out, _ := json.Marshal(idx)
			return out
		}), limits: limits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := stateOf(t, c)
			w := watchIngests(t, c)
			start := time.Now()
			_, err := c.Import(ctx, bytes.NewReader(tt.archive), ImportOptions{Limits: tt.limits})
			took := time.Since(start)
			peak, _ := w.end()
			var le *ImportLimitError
			if tt.limit != "" {
				if !errors.As(err, &le) || le.Limit != tt.limit || !errors.Is(err, ErrImportLimit) {
					t.Fatalf("Import(%s) = %v, want ImportLimitError %s", tt.name, err, tt.limit)
				}
			} else if !errors.Is(err, ErrInvalidArchive) {
				t.Fatalf("Import(%s) = %v, want ErrInvalidArchive", tt.name, err)
			}
			if cap := tt.limits.MaxBytes; cap > 0 && peak > cap || cap == 0 && peak > RatioFloor {
				t.Errorf("ingests held %d bytes at peak, more than max_import_bytes %d", peak, cap)
			}
			if diff := cmp.Diff(before, stateOf(t, c)); diff != "" {
				t.Errorf("Import(%s) left state behind (-before +after):\n%s", tt.name, diff)
			}
			t.Logf("%s: %d archive bytes refused in %v (%v); ingests peaked at %d bytes", tt.name, len(tt.archive), took.Round(time.Millisecond), err, peak)
		})
	}
	t.Run("a small layer of the same making imports", func(t *testing.T) {
		// The bomb's construction is a valid layer: below the limit it
		// imports and unpacks (so the refusal above is the limit's).
		archive := daemontest.WithLayer(t, built, good, smallLayer, smallDiffID)
		if _, err := c.Import(ctx, bytes.NewReader(archive), ImportOptions{RefName: "pcnode.test/rt-limits:small-bomb", Limits: ImportLimits{MaxUnpackedBytes: 64 << 20}}); err != nil {
			t.Fatalf("Import(8 MiB layer) = %v", err)
		}
	})
	t.Run("valid archive still imports", func(t *testing.T) {
		imgs, err := c.Import(ctx, bytes.NewReader(good), ImportOptions{Limits: limits})
		if err != nil || len(imgs) != 1 || imgs[0].Name != built.Name {
			t.Fatalf("Import(valid) = %+v, %v", imgs, err)
		}
		if st := stateOf(t, c); len(st.Leases) != 0 || len(st.Ingests) != 0 {
			t.Errorf("after a good import: leases %v, ingests %v, want none", st.Leases, st.Ingests)
		}
	})
}

// stallingReader serves data up to cut, then cancels the import and
// blocks until the context ends, as a client that goes away mid-stream.
type stallingReader struct {
	data   []byte
	cut    int
	off    int
	ctx    context.Context
	cancel func()
	onCut  func()
	once   sync.Once
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if r.off >= r.cut {
		r.once.Do(func() {
			if r.onCut != nil {
				r.onCut()
			}
			r.cancel()
		})
		<-r.ctx.Done()
		return 0, r.ctx.Err()
	}
	n := copy(p, r.data[r.off:r.cut])
	r.off += n
	return n, nil
}

// TestIntegrationImportCancelled cancels an import in the middle of its
// layer blob: the import's lease and partial ingest are gone when Import
// returns.
func TestIntegrationImportCancelled(t *testing.T) {
	c := newRuntime(t, Config{Namespace: limitsNamespace}, nil)
	built, good := ociArchive(t, "pcnode.test/rt-cancel:1")
	before := stateOf(t, c)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The layer is the first big blob: cut in its middle.
	cut := bytes.Index(good, []byte(built.LayerDesc.Digest.Encoded())) + int(built.LayerDesc.Size)/2
	var during storeState
	r := &stallingReader{data: good, cut: cut, ctx: ctx, cancel: cancel, onCut: func() {
		// containerd has the partial layer in an ingest now.
		deadline := time.Now().Add(5 * time.Second)
		for {
			during = stateOf(t, c)
			if len(during.Ingests) > 0 || time.Now().After(deadline) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}}
	_, err := c.Import(ctx, r, ImportOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Import(cancelled) = %v, want context.Canceled", err)
	}
	if len(during.Ingests) == 0 || len(during.Leases) == 0 {
		t.Fatalf("while stalled: ingests %v, leases %v; want the partial layer leased", during.Ingests, during.Leases)
	}
	if diff := cmp.Diff(before, stateOf(t, c)); diff != "" {
		t.Errorf("cancelled import left state behind (-before +after):\n%s", diff)
	}
}

// TestIntegrationSweepImports leaves an import's lease and partial ingest
// as a killed pcnoded does, and SweepImports removes them.
func TestIntegrationSweepImports(t *testing.T) {
	c := newRuntime(t, Config{Namespace: limitsNamespace}, nil)
	ctx := c.ns(t.Context())
	before := stateOf(t, c)
	other, err := c.client.LeasesService().Create(ctx, leases.WithRandomID(), leases.WithLabel("purpose", "not pcnode's import"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.client.LeasesService().Delete(context.WithoutCancel(ctx), other)
	for range 2 {
		lctx, _, err := c.importLease(ctx)
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("partial layer "), 1<<16)
		w, err := content.OpenWriter(lctx, c.client.ContentStore(), content.WithRef("tar-blobs/sha256/"+time.Now().Format("150405.000000000")),
			content.WithDescriptor(ocispec.Descriptor{Size: int64(len(data)) * 2}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		w.Close() // not committed: what a killed import leaves
	}
	left := stateOf(t, c)
	if len(left.Ingests) != len(before.Ingests)+2 || len(left.Leases) != len(before.Leases)+3 {
		t.Fatalf("set-up left ingests %v, leases %v", left.Ingests, left.Leases)
	}
	n, err := c.SweepImports(t.Context())
	if err != nil || n != 2 {
		t.Fatalf("SweepImports() = %d, %v, want 2, nil", n, err)
	}
	after := stateOf(t, c)
	want := before
	want.Leases = append(slices.Clone(before.Leases), other.ID)
	slices.Sort(want.Leases)
	if diff := cmp.Diff(want, after); diff != "" {
		t.Errorf("after SweepImports (-want +got):\n%s", diff)
	}
}

// pausingReader serves data up to cut, then waits for resume before it
// serves the rest.
type pausingReader struct {
	data   []byte
	cut    int
	off    int
	paused chan struct{} // closed when the reader reaches cut
	resume chan struct{}
}

func (r *pausingReader) Read(p []byte) (int, error) {
	if r.off == r.cut && r.paused != nil {
		close(r.paused)
		r.paused = nil
		<-r.resume
	}
	end := len(r.data)
	if r.off < r.cut {
		end = r.cut
	}
	if r.off >= end {
		return 0, io.EOF
	}
	n := copy(p, r.data[r.off:end])
	r.off += n
	return n, nil
}

// TestIntegrationImportConcurrent runs a second import of the same archive
// while the first is in the middle of its layer (containerd makes the
// second wait for the layer's ingest): both succeed, and neither one's
// clean-up takes anything the other needs.
func TestIntegrationImportConcurrent(t *testing.T) {
	c := newRuntime(t, Config{Namespace: limitsNamespace}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	built, good := ociArchive(t, "pcnode.test/rt-concurrent:1")
	cut := bytes.Index(good, []byte(built.LayerDesc.Digest.Encoded())) + int(built.LayerDesc.Size)/2
	paused := make(chan struct{})
	first := &pausingReader{data: good, cut: cut, paused: paused, resume: make(chan struct{})}
	errs := make(chan error, 2)
	go func() {
		_, err := c.Import(ctx, first, ImportOptions{})
		errs <- err
	}()
	<-paused
	go func() {
		_, err := c.Import(ctx, bytes.NewReader(good), ImportOptions{})
		errs <- err
	}()
	time.Sleep(300 * time.Millisecond) // the second is waiting on the layer now
	close(first.resume)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("Import (one of two at once) = %v", err)
		}
	}
	if _, _, err := c.ReadImageFile(ctx, built.Name, "/processing-container.json", 1<<20); err != nil {
		t.Fatalf("ReadImageFile(%s) = %v", built.Name, err)
	}
	if st := stateOf(t, c); len(st.Leases) != 0 || len(st.Ingests) != 0 {
		t.Errorf("after both imports: leases %v, ingests %v, want none", st.Leases, st.Ingests)
	}
}
