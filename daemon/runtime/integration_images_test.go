package runtime

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/pcnode/pcnode/internal/testimage"
)

func TestIntegrationImportAndReadFile(t *testing.T) {
	c := newRuntime(t, Config{}, nil)
	pc := testimage.DefaultProcessingContainer()
	for _, f := range []testimage.Format{testimage.FormatOCI, testimage.FormatDockerArchive} {
		t.Run(f.String(), func(t *testing.T) {
			ctx := t.Context()
			src := testimage.Image{
				Name: "pcnode.test/rt-import-" + f.String() + ":1",
				Files: []testimage.File{
					{Path: "/etc/pc-link.json", Mode: fs.ModeSymlink | 0o777, Linkname: "../processing-container.json"},
					{Path: "/etc/escape.json", Mode: fs.ModeSymlink | 0o777, Linkname: "../../../../processing-container.json"},
				},
			}
			img := importImage(t, c, src, f)
			if img.Name != src.Name || img.Digest == "" || img.Size <= 0 || img.Created.IsZero() {
				t.Fatalf("Import(%s) = %+v, want %s with digest, size and time", f, img, src.Name)
			}
			got, err := c.GetImage(ctx, src.Name)
			if err != nil || got != img {
				t.Fatalf("GetImage(%q) = %+v, %v, want %+v", src.Name, got, err, img)
			}
			list, err := c.ListImages(ctx)
			if err != nil || !slices.Contains(list, img) {
				t.Fatalf("ListImages() = %+v, %v, want it to hold %+v", list, err, img)
			}

			for _, p := range []string{"/processing-container.json", "/etc/pc-link.json", "/etc/escape.json"} {
				data, dgst, err := c.ReadImageFile(ctx, src.Name, p, 1<<20)
				if err != nil || dgst != img.Digest {
					t.Fatalf("ReadImageFile(%q) = _, %q, %v, want digest %q", p, dgst, err, img.Digest)
				}
				if diff := cmp.Diff(string(pc), string(data)); diff != "" {
					t.Errorf("ReadImageFile(%q) (-want +got):\n%s", p, diff)
				}
			}
			if _, _, err := c.ReadImageFile(ctx, src.Name, "/nope.json", 1<<20); !errors.Is(err, ErrFileNotFound) {
				t.Errorf("ReadImageFile(/nope.json) = %v, want ErrFileNotFound", err)
			}
			// /usr/bin/python3 is a symlink to /pctest, a binary of megabytes.
			if _, _, err := c.ReadImageFile(ctx, src.Name, "/usr/bin/python3", 1024); !errors.Is(err, ErrFileTooLarge) {
				t.Errorf("ReadImageFile(/usr/bin/python3, 1024) = %v, want ErrFileTooLarge", err)
			}
			if _, _, err := c.ReadImageFile(ctx, src.Name, "/tmp", 1024); !errors.Is(err, ErrNotRegularFile) {
				t.Errorf("ReadImageFile(/tmp) = %v, want ErrNotRegularFile", err)
			}
			if _, _, err := c.ReadImageFile(ctx, "pcnode.test/absent:1", "/processing-container.json", 1024); !errors.Is(err, ErrImageNotFound) {
				t.Errorf("ReadImageFile(absent image) = %v, want ErrImageNotFound", err)
			}
		})
	}
}

func TestIntegrationImportWithoutProcessingContainer(t *testing.T) {
	c := newRuntime(t, Config{}, nil)
	img := importImage(t, c, testimage.Image{Name: "pcnode.test/rt-nopc:1", OmitProcessingContainer: true}, testimage.FormatOCI)
	if _, _, err := c.ReadImageFile(t.Context(), img.Name, "/processing-container.json", 1<<20); !errors.Is(err, ErrFileNotFound) {
		t.Fatalf("ReadImageFile(image without it) = %v, want ErrFileNotFound", err)
	}
}

func TestIntegrationImportFormats(t *testing.T) {
	c := newRuntime(t, Config{}, nil)
	ctx := t.Context()
	read := func(t *testing.T, name string, f testimage.Format) []byte {
		t.Helper()
		b, err := os.ReadFile(testimage.Archive(t, testimage.Image{Name: name}, f))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Run("gzip-compressed", func(t *testing.T) {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(read(t, "pcnode.test/rt-gz:1", testimage.FormatOCI))
		zw.Close()
		imgs, err := c.Import(ctx, &gz, ImportOptions{Format: FormatAuto})
		if err != nil || len(imgs) != 1 || imgs[0].Name != "pcnode.test/rt-gz:1" {
			t.Fatalf("Import(gzip OCI) = %+v, %v", imgs, err)
		}
	})
	t.Run("docker archive as OCI", func(t *testing.T) {
		const name = "pcnode.test/rt-wrongformat:1"
		_, err := c.Import(ctx, bytes.NewReader(read(t, name, testimage.FormatDockerArchive)), ImportOptions{Format: FormatOCI})
		if !errors.Is(err, ErrInvalidArchive) {
			t.Fatalf("Import(docker archive, FormatOCI) = %v, want ErrInvalidArchive", err)
		}
		if _, err := c.GetImage(ctx, name); !errors.Is(err, ErrImageNotFound) {
			t.Fatalf("GetImage after refused import = %v, want ErrImageNotFound", err)
		}
	})
	t.Run("OCI as docker archive", func(t *testing.T) {
		_, err := c.Import(ctx, bytes.NewReader(read(t, "pcnode.test/rt-wrongformat:2", testimage.FormatOCI)), ImportOptions{Format: FormatDocker})
		if !errors.Is(err, ErrInvalidArchive) {
			t.Fatalf("Import(OCI, FormatDocker) = %v, want ErrInvalidArchive", err)
		}
	})
	t.Run("docker archive as docker", func(t *testing.T) {
		imgs, err := c.Import(ctx, bytes.NewReader(read(t, "rt-docker-short:1", testimage.FormatDockerArchive)), ImportOptions{Format: FormatDocker})
		if err != nil || len(imgs) != 1 || imgs[0].Name != "docker.io/library/rt-docker-short:1" {
			t.Fatalf("Import(docker archive) = %+v, %v, want docker.io/library/rt-docker-short:1", imgs, err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		_, err := c.Import(ctx, bytes.NewReader(bytes.Repeat([]byte("not a tarball "), 1000)), ImportOptions{})
		if !errors.Is(err, ErrInvalidArchive) {
			t.Fatalf("Import(garbage) = %v, want ErrInvalidArchive", err)
		}
	})
	t.Run("bad options", func(t *testing.T) {
		if _, err := c.Import(ctx, bytes.NewReader(nil), ImportOptions{Format: "zip"}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Import(format zip) = %v, want ErrInvalidArgument", err)
		}
		if _, err := c.Import(ctx, bytes.NewReader(nil), ImportOptions{RefName: "Bad Name"}); !errors.Is(err, ErrInvalidReference) {
			t.Errorf("Import(RefName %q) = %v, want ErrInvalidReference", "Bad Name", err)
		}
	})
}

func TestIntegrationImportUnnamed(t *testing.T) {
	c := newRuntime(t, Config{}, nil)
	ctx := t.Context()
	b, err := os.ReadFile(testimage.Archive(t, testimage.Image{Name: "pcnode.test/rt-unnamed-src:1"}, testimage.FormatOCI))
	if err != nil {
		t.Fatal(err)
	}
	// Drop the names from index.json, as tools that write bare layouts do.
	unnamed := rewriteTar(t, b, func(name string, data []byte) []byte {
		if name != "index.json" {
			return data
		}
		var idx ocispec.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			t.Fatal(err)
		}
		for i := range idx.Manifests {
			idx.Manifests[i].Annotations = nil
		}
		out, err := json.Marshal(idx)
		if err != nil {
			t.Fatal(err)
		}
		return out
	})
	if _, err := c.Import(ctx, bytes.NewReader(unnamed), ImportOptions{}); !errors.Is(err, ErrInvalidArchive) {
		t.Fatalf("Import(unnamed, no RefName) = %v, want ErrInvalidArchive", err)
	}
	imgs, err := c.Import(ctx, bytes.NewReader(unnamed), ImportOptions{RefName: "rt-unnamed"})
	if err != nil || len(imgs) != 1 || imgs[0].Name != "docker.io/library/rt-unnamed:latest" {
		t.Fatalf("Import(unnamed, RefName rt-unnamed) = %+v, %v, want docker.io/library/rt-unnamed:latest", imgs, err)
	}
	if _, _, err := c.ReadImageFile(ctx, "rt-unnamed", "/processing-container.json", 1<<20); err != nil {
		t.Fatalf("ReadImageFile(rt-unnamed) = %v", err)
	}
}

func TestIntegrationRemoveImage(t *testing.T) {
	c := newRuntime(t, Config{}, nil)
	ctx := t.Context()
	img := importImage(t, c, testimage.Image{Name: "pcnode.test/rt-remove:1"}, testimage.FormatOCI)
	if err := c.RemoveImage(ctx, img.Name); err != nil {
		t.Fatalf("RemoveImage(%q) = %v", img.Name, err)
	}
	if _, err := c.GetImage(ctx, img.Name); !errors.Is(err, ErrImageNotFound) {
		t.Fatalf("GetImage after RemoveImage = %v, want ErrImageNotFound", err)
	}
	if err := c.RemoveImage(ctx, img.Name); !errors.Is(err, ErrImageNotFound) {
		t.Fatalf("RemoveImage twice = %v, want ErrImageNotFound", err)
	}
	if err := c.RemoveImage(ctx, "Not/Valid"); !errors.Is(err, ErrInvalidReference) {
		t.Fatalf("RemoveImage(invalid) = %v, want ErrInvalidReference", err)
	}
}

func TestIntegrationVersion(t *testing.T) {
	c := newRuntime(t, Config{}, nil)
	v, err := c.Version(t.Context())
	if err != nil || v.Version == "" {
		t.Fatalf("Version() = %+v, %v, want containerd's version", v, err)
	}
	if c.Namespace() != testNamespace {
		t.Fatalf("Namespace() = %q, want %q", c.Namespace(), testNamespace)
	}
}
