package outputs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestCollectKnownTree(t *testing.T) {
	dir := base(t)
	contents := map[string][]byte{
		"a.txt":              []byte("hello\n"),
		"a-b":                []byte("dash"),
		"a/x":                []byte("x"),
		"b/c.bin":            randomBytes(1, 1<<20+7), // over several read buffers
		"b/d/empty":          {},
		"B":                  []byte("upper case sorts first"),
		"dir with space/f 1": []byte("space"),
		"ünïcode/ß.txt":      []byte("utf-8"),
	}
	for p, data := range contents {
		writeFile(t, filepath.Join(dir, p), data)
	}
	if err := os.MkdirAll(filepath.Join(dir, "empty-dir/deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Sorted by byte order of the whole path: "a-b" < "a.txt" < "a/x".
	var want []File
	var total int64
	for _, p := range []string{"B", "a-b", "a.txt", "a/x", "b/c.bin", "b/d/empty", "dir with space/f 1", "ünïcode/ß.txt"} {
		data := contents[p]
		want = append(want, File{Path: p, Size: int64(len(data)), SHA256: sum(data)})
		total += int64(len(data))
	}
	// Independent check of one digest against a known value.
	if got := sum([]byte("hello\n")); got != "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03" {
		t.Fatalf("sha256(hello\\n) = %s", got)
	}

	for _, workers := range []int{0, 1, 3, 100} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			got, err := Collect(context.Background(), "out", dir, workers)
			if err != nil {
				t.Fatalf("Collect(%q) = %v", dir, err)
			}
			wantM := &Manifest{Name: "out", HostPath: dir, Files: want, FileCount: int64(len(want)), TotalBytes: total}
			if diff := cmp.Diff(wantM, got); diff != "" {
				t.Errorf("Collect(%q) mismatch (-want +got):\n%s", dir, diff)
			}
		})
	}
}

func TestCollectEmpty(t *testing.T) {
	dir := base(t)
	got, err := Collect(context.Background(), "empty", dir, 0)
	if err != nil {
		t.Fatalf("Collect(%q) = %v", dir, err)
	}
	want := &Manifest{Name: "empty", HostPath: dir, Files: []File{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Collect(%q) mismatch (-want +got):\n%s", dir, diff)
	}
}

func TestCollectNested(t *testing.T) {
	dir := base(t)
	deep := strings.Repeat("d/", 40) + "leaf"
	writeFile(t, filepath.Join(dir, deep), []byte("deep"))
	writeFile(t, filepath.Join(dir, "top"), []byte("top"))
	got, err := Collect(context.Background(), "n", dir, 2)
	if err != nil {
		t.Fatalf("Collect(%q) = %v", dir, err)
	}
	want := []File{
		{Path: deep, Size: 4, SHA256: sum([]byte("deep"))},
		{Path: "top", Size: 3, SHA256: sum([]byte("top"))},
	}
	if diff := cmp.Diff(want, got.Files); diff != "" {
		t.Errorf("Collect(%q).Files mismatch (-want +got):\n%s", dir, diff)
	}
}

// TestCollectSkips: symlinks (to files, to directories, inside or outside,
// dangling), FIFOs, sockets and paths that are not UTF-8 are not listed,
// and counted.
func TestCollectSkips(t *testing.T) {
	b := base(t)
	dir := filepath.Join(b, "out")
	outside := filepath.Join(b, "outside")
	writeFile(t, filepath.Join(outside, "secret"), []byte("secret"))
	writeFile(t, filepath.Join(dir, "real"), []byte("real"))
	writeFile(t, filepath.Join(dir, "sub/inner"), []byte("inner"))
	symlink(t, "real", filepath.Join(dir, "link-file"))
	symlink(t, "sub", filepath.Join(dir, "link-dir"))
	symlink(t, outside, filepath.Join(dir, "link-outside"))
	symlink(t, filepath.Join(outside, "secret"), filepath.Join(dir, "sub/link-secret"))
	symlink(t, "nowhere", filepath.Join(dir, "dangling"))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A unix socket; its path must fit in sun_path, so bind relative to dir.
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", "sock")
	os.Chdir(wd)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	writeFile(t, filepath.Join(dir, "bad-\xff-name"), []byte("not utf-8"))
	writeFile(t, filepath.Join(dir, "bad-\xfe-dir/f"), []byte("not utf-8 either"))

	got, err := Collect(context.Background(), "out", dir, 4)
	if err != nil {
		t.Fatalf("Collect(%q) = %v", dir, err)
	}
	want := &Manifest{
		Name: "out", HostPath: dir,
		Files: []File{
			{Path: "real", Size: 4, SHA256: sum([]byte("real"))},
			{Path: "sub/inner", Size: 5, SHA256: sum([]byte("inner"))},
		},
		FileCount: 2, TotalBytes: 9,
		Skipped: 9, // 5 symlinks, fifo, socket, a file and a directory with non-UTF-8 names
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Collect(%q) mismatch (-want +got):\n%s", dir, diff)
	}
}

func TestCollectRefuses(t *testing.T) {
	b := base(t)
	writeFile(t, filepath.Join(b, "real/f"), []byte("f"))
	symlink(t, filepath.Join(b, "real"), filepath.Join(b, "link"))
	writeFile(t, filepath.Join(b, "file"), []byte("x"))
	tests := []struct {
		name    string
		dir     string
		wantErr error
	}{
		{name: "symlinked dir", dir: filepath.Join(b, "link"), wantErr: ErrSymlink},
		{name: "below symlink", dir: filepath.Join(b, "link/sub"), wantErr: ErrSymlink},
		{name: "missing", dir: filepath.Join(b, "missing"), wantErr: fs.ErrNotExist},
		{name: "file", dir: filepath.Join(b, "file"), wantErr: ErrNotDirectory},
		{name: "relative", dir: "real", wantErr: ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Collect(context.Background(), "c", tt.dir, 0)
			if !errors.Is(err, tt.wantErr) || got != nil {
				t.Errorf("Collect(%q) = %v, %v, want nil, %v", tt.dir, got, err, tt.wantErr)
			}
		})
	}
}

// TestCollectManyFiles is meant for -race: many files, many workers.
func TestCollectManyFiles(t *testing.T) {
	dir := base(t)
	const n = 2000
	want := make(map[string]File, n)
	var total int64
	for i := range n {
		p := fmt.Sprintf("d%02d/f%04d", i%17, i)
		data := randomBytes(uint64(i), i%4096)
		writeFile(t, filepath.Join(dir, p), data)
		want[p] = File{Path: p, Size: int64(len(data)), SHA256: sum(data)}
		total += int64(len(data))
	}
	got, err := Collect(context.Background(), "many", dir, 16)
	if err != nil {
		t.Fatalf("Collect(%q) = %v", dir, err)
	}
	if got.FileCount != n || int64(len(got.Files)) != n || got.TotalBytes != total {
		t.Fatalf("Collect(%q) = %d files (%d listed), %d bytes, want %d files, %d bytes",
			dir, got.FileCount, len(got.Files), got.TotalBytes, n, total)
	}
	for i, f := range got.Files {
		if i > 0 && got.Files[i-1].Path >= f.Path {
			t.Fatalf("Collect(%q).Files not sorted: %q before %q", dir, got.Files[i-1].Path, f.Path)
		}
		if f != want[f.Path] {
			t.Errorf("Collect(%q) file %q = %+v, want %+v", dir, f.Path, f, want[f.Path])
		}
	}
}

// countdownCtx is cancelled once its Err has been asked after n times: a
// deterministic way to cancel Collect at a chosen point of its work.
type countdownCtx struct {
	context.Context
	cancel context.CancelFunc
	left   atomic.Int64
}

func newCountdownCtx(n int64) *countdownCtx {
	ctx, cancel := context.WithCancel(context.Background())
	c := &countdownCtx{Context: ctx, cancel: cancel}
	c.left.Store(n)
	return c
}

func (c *countdownCtx) Err() error {
	if c.left.Add(-1) < 0 {
		c.cancel()
	}
	return c.Context.Err()
}

func TestCollectCancelled(t *testing.T) {
	dir := base(t)
	for i := range 50 {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("d%d/f%d", i%5, i)), randomBytes(uint64(i), 3*hashBufSize))
	}
	// Count how often a full run asks ctx: once per component of dir, per
	// walked entry, per file and per read. The count does not depend on
	// scheduling.
	counter := newCountdownCtx(1 << 40)
	if _, err := Collect(counter, "c", dir, 4); err != nil {
		t.Fatalf("Collect(%q) = %v", dir, err)
	}
	total := 1<<40 - counter.left.Load()
	if total < 50*4 {
		t.Fatalf("Collect(%q) asked ctx %d times, want at least once per file and read", dir, total)
	}
	// Cancel at the start, during the walk, and early, halfway and at the
	// very end of the hashing.
	for _, n := range []int64{0, 1, 10, total - 200, total / 2, total - 50, total - 1} {
		t.Run(fmt.Sprintf("after=%d/%d", n, total), func(t *testing.T) {
			ctx := newCountdownCtx(n)
			defer ctx.cancel()
			got, err := Collect(ctx, "c", dir, 4)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Collect(%q) cancelled after %d checks = %v, want %v", dir, n, err, context.Canceled)
			}
			if got != nil {
				t.Errorf("Collect(%q) cancelled after %d checks returned a manifest of %d files, want none", dir, n, got.FileCount)
			}
		})
	}
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
		defer cancel()
		if _, err := Collect(ctx, "c", dir, 4); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Collect(%q) past its deadline = %v, want %v", dir, err, context.DeadlineExceeded)
		}
	})
}

// TestHashFileRefusesFIFO: a file that became a FIFO after the walk is
// refused, and opening it does not wait for a writer.
func TestHashFileRefusesFIFO(t *testing.T) {
	dir := base(t)
	if err := syscall.Mkfifo(filepath.Join(dir, "f"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	done := make(chan error, 1)
	go func() {
		_, err := hashFile(func() error { return nil }, root, "f", make([]byte, 16))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrChanged) {
			t.Errorf("hashFile(fifo) = %v, want %v", err, ErrChanged)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hashFile(fifo) blocked")
	}
}
