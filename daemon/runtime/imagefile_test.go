package runtime

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// ent is one tar entry of a test layer.
type ent struct {
	name string
	typ  byte   // tar.TypeReg when 0
	data string // regular file content
	link string // symlink or hardlink target
}

func file(name, data string) ent  { return ent{name: name, typ: tar.TypeReg, data: data} }
func dir(name string) ent         { return ent{name: name, typ: tar.TypeDir} }
func symlink(name, to string) ent { return ent{name: name, typ: tar.TypeSymlink, link: to} }
func hardlink(name, to string) ent {
	return ent{name: name, typ: tar.TypeLink, link: to}
}
func whiteout(name string) ent { return file(name, "") }

func layerTar(t testing.TB, ents []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644}
		if e.typ == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := io.WriteString(tw, e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// openerOf serves layers (bottom first) from memory.
func openerOf(layers [][]byte) layerOpener {
	return func(_ context.Context, i int) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layers[i])), nil
	}
}

func TestFindInLayers(t *testing.T) {
	const pc = "processing-container.json"
	tests := []struct {
		name   string
		layers [][]ent // bottom first
		path   string
		max    int64
		want   string
		err    error
	}{
		{
			name:   "top layer",
			layers: [][]ent{{file(pc, "old")}, {file("./"+pc, "new")}},
			path:   pc, want: "new",
		},
		{
			name:   "lower layer",
			layers: [][]ent{{file(pc, "base")}, {file("other", "x")}},
			path:   pc, want: "base",
		},
		{
			name:   "absent",
			layers: [][]ent{{file("other", "x")}},
			path:   pc, err: ErrFileNotFound,
		},
		{
			name:   "no layers",
			layers: nil,
			path:   pc, err: ErrFileNotFound,
		},
		{
			name:   "whiteout hides lower",
			layers: [][]ent{{file(pc, "base")}, {whiteout(".wh." + pc)}},
			path:   pc, err: ErrFileNotFound,
		},
		{
			name:   "recreated above whiteout",
			layers: [][]ent{{file(pc, "base")}, {whiteout(".wh." + pc)}, {file(pc, "again")}},
			path:   pc, want: "again",
		},
		{
			name:   "whiteout of another file",
			layers: [][]ent{{file(pc, "base")}, {whiteout(".wh." + pc + ".bak")}},
			path:   pc, want: "base",
		},
		{
			name:   "whiteout of parent dir",
			layers: [][]ent{{dir("etc/"), file("etc/pc.json", "base")}, {whiteout(".wh.etc")}},
			path:   "etc/pc.json", err: ErrFileNotFound,
		},
		{
			name:   "opaque parent hides lower",
			layers: [][]ent{{dir("etc/"), file("etc/pc.json", "base")}, {dir("etc/"), whiteout("etc/.wh..wh..opq"), file("etc/other", "x")}},
			path:   "etc/pc.json", err: ErrFileNotFound,
		},
		{
			name:   "opaque parent keeps own layer",
			layers: [][]ent{{file("etc/pc.json", "base")}, {whiteout("etc/.wh..wh..opq"), file("etc/pc.json", "mine")}},
			path:   "etc/pc.json", want: "mine",
		},
		{
			name:   "opaque sibling dir does not hide",
			layers: [][]ent{{file("etc/pc.json", "base")}, {whiteout("var/.wh..wh..opq")}},
			path:   "etc/pc.json", want: "base",
		},
		{
			name:   "opaque root hides everything below",
			layers: [][]ent{{file(pc, "base")}, {whiteout(".wh..wh..opq")}},
			path:   pc, err: ErrFileNotFound,
		},
		{
			name:   "relative symlink",
			layers: [][]ent{{file("etc/real.json", "real"), symlink(pc, "etc/real.json")}},
			path:   pc, want: "real",
		},
		{
			name:   "absolute symlink resolved in image",
			layers: [][]ent{{file("etc/real.json", "real")}, {symlink(pc, "/etc/real.json")}},
			path:   pc, want: "real",
		},
		{
			name:   "symlink climbing out stays at image root",
			layers: [][]ent{{file("real.json", "real"), symlink("a/b/pc", "../../../../../real.json")}},
			path:   "a/b/pc", want: "real",
		},
		{
			name:   "symlink to host file is looked up in image",
			layers: [][]ent{{symlink(pc, "/etc/passwd")}},
			path:   pc, err: ErrFileNotFound,
		},
		{
			name:   "symlink target whited out",
			layers: [][]ent{{file("real", "real")}, {symlink(pc, "real"), whiteout(".wh.real")}},
			path:   pc, err: ErrFileNotFound,
		},
		{
			name:   "symlink loop",
			layers: [][]ent{{symlink("a", "b"), symlink("b", "a")}},
			path:   "a", err: ErrFileNotFound,
		},
		{
			name:   "symlink to root",
			layers: [][]ent{{symlink(pc, "/")}},
			path:   pc, err: ErrNotRegularFile,
		},
		{
			name:   "symlinked parent dir",
			layers: [][]ent{{file("data/v1/pc.json", "v1"), symlink("cur", "data/v1")}},
			path:   "cur/pc.json", want: "v1",
		},
		{
			name:   "symlinked parent in upper layer",
			layers: [][]ent{{file("data/v1/pc.json", "v1"), file("cur/pc.json", "shadowed")}, {symlink("cur", "/data/v1")}},
			path:   "cur/pc.json", want: "v1",
		},
		{
			name:   "dir in upper layer replaces lower symlink",
			layers: [][]ent{{file("data/pc.json", "data")}, {symlink("cur", "data")}, {dir("cur/"), file("cur/other", "x")}},
			path:   "cur/pc.json", err: ErrFileNotFound,
		},
		{
			name:   "parent is a file",
			layers: [][]ent{{file("cur/pc.json", "old")}, {file("cur", "now a file")}},
			path:   "cur/pc.json", err: ErrFileNotFound,
		},
		{
			name:   "hard link",
			layers: [][]ent{{file("real", "real"), hardlink(pc, "real")}},
			path:   pc, want: "real",
		},
		{
			name:   "hard link to lower layer",
			layers: [][]ent{{file("real", "real")}, {hardlink(pc, "./real")}},
			path:   pc, want: "real",
		},
		{
			name:   "directory",
			layers: [][]ent{{dir(pc + "/")}},
			path:   pc, err: ErrNotRegularFile,
		},
		{
			name:   "too large",
			layers: [][]ent{{file(pc, "0123456789")}},
			path:   pc, max: 9, err: ErrFileTooLarge,
		},
		{
			name:   "exactly the cap",
			layers: [][]ent{{file(pc, "0123456789")}},
			path:   pc, max: 10, want: "0123456789",
		},
		{
			name:   "last entry in a layer wins",
			layers: [][]ent{{file(pc, "first"), file(pc, "second")}},
			path:   pc, want: "second",
		},
		{
			name:   "dot-dot entry names are cleaned",
			layers: [][]ent{{file("../../"+pc, "cleaned")}},
			path:   pc, want: "cleaned",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layers := make([][]byte, len(tt.layers))
			for i, l := range tt.layers {
				layers[i] = layerTar(t, l)
			}
			max := tt.max
			if max == 0 {
				max = 1 << 20
			}
			got, err := findInLayers(t.Context(), len(layers), openerOf(layers), tt.path, max)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("findInLayers(%q) = %q, %v, want error %v", tt.path, got, err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("findInLayers(%q) = %q, %v, want %q", tt.path, got, err, tt.want)
			}
		})
	}
}

func TestFindInLayersBadTar(t *testing.T) {
	layers := [][]byte{[]byte(strings.Repeat("not a tar ", 100))}
	_, err := findInLayers(t.Context(), 1, openerOf(layers), "x", 100)
	if err == nil || errors.Is(err, ErrFileNotFound) {
		t.Fatalf("findInLayers(garbage) = %v, want a read error", err)
	}
}

func TestImagePath(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  bool
	}{
		{"/processing-container.json", "processing-container.json", false},
		{"/a/./b/../c", "a/c", false},
		{"/../../etc/passwd", "etc/passwd", false},
		{"relative", "", true},
		{"/", "", true},
		{"/..", "", true},
		{"", "", true},
		{"/a\x00b", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := imagePath(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("imagePath(%q) = %q, %v, want %q (error %v)", tt.in, got, err, tt.want, tt.err)
			}
			if err != nil && !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("imagePath(%q) error %v, want ErrInvalidArgument", tt.in, err)
			}
		})
	}
}

// FuzzFindInLayers feeds arbitrary bytes as a layer: the walk must not
// panic, and whatever it returns must respect the size cap.
func FuzzFindInLayers(f *testing.F) {
	f.Add(layerTar(f, []ent{file("pc", "x")}), "pc")
	f.Add(layerTar(f, []ent{symlink("pc", "a"), symlink("a", "pc")}), "pc")
	f.Add(layerTar(f, []ent{whiteout(".wh.pc"), file("d/pc", "y")}), "d/pc")
	f.Add([]byte("garbage"), "pc")
	f.Fuzz(func(t *testing.T, layer []byte, p string) {
		target, err := imagePath("/" + p)
		if err != nil {
			return
		}
		layers := [][]byte{layer, layer}
		data, err := findInLayers(context.Background(), len(layers), openerOf(layers), target, 64)
		if err == nil && len(data) > 64 {
			t.Fatalf("findInLayers returned %d bytes over a cap of 64", len(data))
		}
	})
}
