package testimage_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/pcnode/pcnode/internal/testimage"
)

// readTar returns a tar's regular files by name, and every entry's name in
// order.
func readTar(t *testing.T, r io.Reader) (map[string][]byte, []*tar.Header) {
	t.Helper()
	files := map[string][]byte{}
	var hdrs []*tar.Header
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, hdrs
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		hdrs = append(hdrs, h)
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = b
		}
	}
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("json: %v in %q", err, b)
	}
}

// layerEntry is what the tests compare of a layer tar header.
type layerEntry struct {
	Name     string
	Type     byte
	Mode     int64
	Linkname string
}

func layerOf(t *testing.T, gz []byte) ([]layerEntry, map[string][]byte, digest.Digest) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("layer gzip: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	files, hdrs := readTar(t, bytes.NewReader(raw))
	var entries []layerEntry
	for _, h := range hdrs {
		entries = append(entries, layerEntry{h.Name, h.Typeflag, h.Mode, h.Linkname})
	}
	return entries, files, digest.FromBytes(raw)
}

func standardEntries(extra ...layerEntry) []layerEntry {
	e := []layerEntry{
		{"etc/", tar.TypeDir, 0o755, ""},
		{"etc/group", tar.TypeReg, 0o644, ""},
		{"etc/passwd", tar.TypeReg, 0o644, ""},
		{"home/", tar.TypeDir, 0o755, ""},
		{"pctest", tar.TypeReg, 0o755, ""},
		{"processing-container.json", tar.TypeReg, 0o644, ""},
		{"root/", tar.TypeDir, 0o700, ""},
		{"tmp/", tar.TypeDir, 0o1777, ""},
		{"usr/", tar.TypeDir, 0o755, ""},
		{"usr/bin/", tar.TypeDir, 0o755, ""},
		{"usr/bin/python", tar.TypeSymlink, 0o777, "/pctest"},
		{"usr/bin/python3", tar.TypeSymlink, 0o777, "/pctest"},
	}
	return append(e, extra...)
}

func TestWriteOCI(t *testing.T) {
	img := testimage.Image{
		Name:   "pcnode.test/oci-check:v2",
		Env:    []string{"A=1"},
		Labels: map[string]string{"org.example": "x"},
		User:   "nobody",
		Cmd:    []string{"env"},
	}
	b, err := testimage.Build(t.Context(), img)
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}
	var buf bytes.Buffer
	if err := b.WriteOCI(&buf); err != nil {
		t.Fatalf("WriteOCI() = %v", err)
	}
	files, _ := readTar(t, &buf)

	// Every blob is stored under its digest.
	for name, data := range files {
		if enc, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			if got := digest.FromBytes(data).Encoded(); got != enc {
				t.Errorf("blob %s has digest %s", name, got)
			}
		}
	}
	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", got)
	}
	var index ocispec.Index
	mustJSON(t, files["index.json"], &index)
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests, want 1", len(index.Manifests))
	}
	md := index.Manifests[0]
	wantAnn := map[string]string{ocispec.AnnotationRefName: "v2", "io.containerd.image.name": "pcnode.test/oci-check:v2"}
	if diff := cmp.Diff(wantAnn, md.Annotations); diff != "" {
		t.Errorf("index annotations (-want +got):\n%s", diff)
	}
	if md.Platform == nil || md.Platform.OS != "linux" || md.Platform.Architecture != runtime.GOARCH {
		t.Errorf("index platform = %+v, want linux/%s", md.Platform, runtime.GOARCH)
	}
	if md.Digest != b.ManifestDesc.Digest {
		t.Errorf("index manifest digest = %s, want Built's %s", md.Digest, b.ManifestDesc.Digest)
	}
	var m ocispec.Manifest
	mustJSON(t, files["blobs/sha256/"+md.Digest.Encoded()], &m)
	if m.MediaType != ocispec.MediaTypeImageManifest || len(m.Layers) != 1 || m.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Errorf("manifest = %+v, want one gzip layer", m)
	}
	var cfg ocispec.Image
	mustJSON(t, files["blobs/sha256/"+m.Config.Digest.Encoded()], &cfg)
	wantConfig := ocispec.ImageConfig{
		User:       "nobody",
		Env:        []string{testimage.ImagePath, "A=1"},
		Entrypoint: []string{"/pctest"},
		Cmd:        []string{"env"},
		Labels:     map[string]string{"org.example": "x"},
	}
	if diff := cmp.Diff(wantConfig, cfg.Config); diff != "" {
		t.Errorf("image config (-want +got):\n%s", diff)
	}
	entries, layerFiles, diffID := layerOf(t, files["blobs/sha256/"+m.Layers[0].Digest.Encoded()])
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != diffID || diffID != b.DiffID {
		t.Errorf("config diff_ids = %v, want [%s] (Built %s)", cfg.RootFS.DiffIDs, diffID, b.DiffID)
	}
	if diff := cmp.Diff(standardEntries(), entries); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
	prog, err := os.ReadFile(program(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(layerFiles["pctest"], prog) {
		t.Errorf("layer /pctest differs from Program()")
	}
	if !bytes.Equal(layerFiles["processing-container.json"], testimage.DefaultProcessingContainer()) {
		t.Errorf("layer /processing-container.json is not the default")
	}
	if !strings.Contains(string(layerFiles["etc/passwd"]), "nobody:x:65534:65534:") {
		t.Errorf("/etc/passwd = %q, want a nobody user", layerFiles["etc/passwd"])
	}
}

func TestWriteDockerArchive(t *testing.T) {
	b, err := testimage.Build(t.Context(), testimage.Image{Name: "docker.io/library/pctest:7"})
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}
	var buf bytes.Buffer
	if err := b.WriteDockerArchive(&buf); err != nil {
		t.Fatalf("WriteDockerArchive() = %v", err)
	}
	files, _ := readTar(t, &buf)
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	mustJSON(t, files["manifest.json"], &manifest)
	if len(manifest) != 1 || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest.json = %s, want one image with one layer", files["manifest.json"])
	}
	if diff := cmp.Diff([]string{"pctest:7"}, manifest[0].RepoTags); diff != "" {
		t.Errorf("RepoTags (-want +got):\n%s", diff)
	}
	if got := digest.FromBytes(files[manifest[0].Config]); got != b.ConfigDesc.Digest {
		t.Errorf("config %s has digest %s, want %s", manifest[0].Config, got, b.ConfigDesc.Digest)
	}
	if got := digest.FromBytes(files[manifest[0].Layers[0]]); got != b.DiffID {
		t.Errorf("layer.tar digest = %s, want DiffID %s", got, b.DiffID)
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	var digests []string
	for range 2 {
		b, err := testimage.Build(t.Context(), testimage.Image{Files: []testimage.File{{Path: "/a/b", Data: []byte("x")}}})
		if err != nil {
			t.Fatalf("Build() = %v", err)
		}
		var oci, docker bytes.Buffer
		if err := b.WriteOCI(&oci); err != nil {
			t.Fatal(err)
		}
		if err := b.WriteDockerArchive(&docker); err != nil {
			t.Fatal(err)
		}
		digests = append(digests, fmt.Sprint(b.ManifestDesc.Digest, digest.FromBytes(oci.Bytes()), digest.FromBytes(docker.Bytes())))
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds differ: %s vs %s", digests[0], digests[1])
	}
}

func TestBuildOptions(t *testing.T) {
	tests := []struct {
		name      string
		img       testimage.Image
		wantName  string
		wantExtra []layerEntry
		wantFiles map[string]string
		omitPC    bool
	}{
		{
			name:     "short name normalised",
			img:      testimage.Image{Name: "pctest"},
			wantName: "docker.io/library/pctest:latest",
		},
		{
			name:      "broken processing-container.json",
			img:       testimage.Image{ProcessingContainer: []byte("{broken")},
			wantName:  testimage.DefaultName,
			wantFiles: map[string]string{"processing-container.json": "{broken"},
		},
		{
			name:     "without processing-container.json",
			img:      testimage.Image{OmitProcessingContainer: true},
			wantName: testimage.DefaultName,
			omitPC:   true,
		},
		{
			name: "extra files, parents created, standard file replaced",
			img: testimage.Image{Files: []testimage.File{
				{Path: "/data/in/deep/x.json", Data: []byte("{}"), Mode: 0o600},
				{Path: "/bin", Mode: fs.ModeDir | 0o755},
				{Path: "/bin/sh", Mode: fs.ModeSymlink, Linkname: "/pctest"},
				{Path: "/etc/passwd", Data: []byte("root:x:0:0::/:/x\n")},
			}},
			wantName: testimage.DefaultName,
			wantExtra: []layerEntry{
				{"bin/", tar.TypeDir, 0o755, ""},
				{"bin/sh", tar.TypeSymlink, 0, "/pctest"},
				{"data/", tar.TypeDir, 0o755, ""},
				{"data/in/", tar.TypeDir, 0o755, ""},
				{"data/in/deep/", tar.TypeDir, 0o755, ""},
				{"data/in/deep/x.json", tar.TypeReg, 0o600, ""},
			},
			wantFiles: map[string]string{"etc/passwd": "root:x:0:0::/:/x\n", "data/in/deep/x.json": "{}"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testimage.Archive(t, tt.img, testimage.FormatOCI)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			files, _ := readTar(t, f)
			var index ocispec.Index
			mustJSON(t, files["index.json"], &index)
			if got := index.Manifests[0].Annotations["io.containerd.image.name"]; got != tt.wantName {
				t.Errorf("image name = %q, want %q", got, tt.wantName)
			}
			var m ocispec.Manifest
			mustJSON(t, files["blobs/sha256/"+index.Manifests[0].Digest.Encoded()], &m)
			entries, layerFiles, _ := layerOf(t, files["blobs/sha256/"+m.Layers[0].Digest.Encoded()])
			want := standardEntries(tt.wantExtra...)
			if tt.omitPC {
				want = slicesDeleteName(want, "processing-container.json")
			}
			sortEntries(want)
			if diff := cmp.Diff(want, entries); diff != "" {
				t.Errorf("layer entries (-want +got):\n%s", diff)
			}
			for name, data := range tt.wantFiles {
				if got := string(layerFiles[name]); got != data {
					t.Errorf("layer %s = %q, want %q", name, got, data)
				}
			}
		})
	}
}

func slicesDeleteName(e []layerEntry, name string) []layerEntry {
	var out []layerEntry
	for _, x := range e {
		if x.Name != name {
			out = append(out, x)
		}
	}
	return out
}

// sortEntries orders entries as the layer does: by path without the
// trailing slash of directories.
func sortEntries(e []layerEntry) {
	key := func(x layerEntry) string { return strings.TrimSuffix(x.Name, "/") }
	for i := 1; i < len(e); i++ {
		for j := i; j > 0 && key(e[j]) < key(e[j-1]); j-- {
			e[j], e[j-1] = e[j-1], e[j]
		}
	}
}

func TestBuildRejects(t *testing.T) {
	tests := []struct {
		name string
		img  testimage.Image
	}{
		{"relative file", testimage.Image{Files: []testimage.File{{Path: "etc/x"}}}},
		{"unclean file", testimage.Image{Files: []testimage.File{{Path: "/etc/../x"}}}},
		{"root", testimage.Image{Files: []testimage.File{{Path: "/"}}}},
		{"device", testimage.Image{Files: []testimage.File{{Path: "/dev/x", Mode: fs.ModeDevice}}}},
		{"symlink without target", testimage.Image{Files: []testimage.File{{Path: "/x", Mode: fs.ModeSymlink}}}},
		{"digest name", testimage.Image{Name: "pctest@sha256:" + strings.Repeat("a", 64)}},
		{"bad name", testimage.Image{Name: "UPPER/Case"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := testimage.Build(t.Context(), tt.img)
			if !errors.Is(err, testimage.ErrInvalidImage) {
				t.Errorf("Build(%+v) = %v, want ErrInvalidImage", tt.img, err)
			}
		})
	}
}

// TestDefaultProcessingContainer checks the default file's own
// consistency; daemon/spec validates it against pcnode's rules.
func TestDefaultProcessingContainer(t *testing.T) {
	var pc struct {
		Templates []struct {
			Identifier string
			Env        []struct{ Name, Value string }
			Command    []string
		}
	}
	mustJSON(t, testimage.DefaultProcessingContainer(), &pc)
	ref := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	seen := map[string]bool{}
	for _, tpl := range pc.Templates {
		if seen[tpl.Identifier] {
			t.Errorf("template %q appears twice", tpl.Identifier)
		}
		seen[tpl.Identifier] = true
		env := map[string]bool{}
		for _, e := range tpl.Env {
			env[e.Name] = true
		}
		if len(tpl.Command) == 0 || (tpl.Command[0] != "/pctest" && tpl.Command[0] != "python3") {
			t.Errorf("template %q command = %q, want /pctest or python3", tpl.Identifier, tpl.Command)
		}
		for _, arg := range tpl.Command {
			for _, m := range ref.FindAllStringSubmatch(arg, -1) {
				if !env[m[1]] {
					t.Errorf("template %q command uses ${%s}, which its env lacks", tpl.Identifier, m[1])
				}
			}
		}
	}
	for _, want := range []string{"steps", "env", "copy", "transform", "multi", "write-output", "stdout", "stderr",
		"alloc", "spin", "sleep", "ignore-sigterm", "exit", "scaled", "gpu", "upstream", "downstream"} {
		if !seen[want] {
			t.Errorf("template %q missing", want)
		}
	}
}

func TestKaapanaDummyProcessingContainer(t *testing.T) {
	b, err := testimage.KaapanaDummyProcessingContainer()
	if err != nil {
		t.Fatalf("KaapanaDummyProcessingContainer() = %v", err)
	}
	if !bytes.Contains(b, []byte(`"upstream.py"`)) {
		t.Errorf("KaapanaDummyProcessingContainer() does not run upstream.py: %.200s", b)
	}
}
