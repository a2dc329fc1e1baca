package outputs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// TestCollectLeavesNoPrivilege: the walk clears setuid and setgid bits and
// removes device nodes wherever they are in the channel, reports each, and
// never follows a symlink to act on what it names.
func TestCollectLeavesNoPrivilege(t *testing.T) {
	type entry struct {
		path string
		make func(t *testing.T, p string)
	}
	regular := func(mode os.FileMode) func(t *testing.T, p string) {
		return func(t *testing.T, p string) {
			writeFile(t, p, []byte("#!/bin/sh\n"))
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	device := func(kind uint32, major, minor uint32) func(t *testing.T, p string) {
		return func(t *testing.T, p string) {
			needRoot(t)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mknod(p, kind|0o666, int(unix.Mkdev(major, minor))); err != nil {
				t.Fatal(err)
			}
		}
	}
	fifo := func(t *testing.T, p string) {
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const setuid, setgid = os.ModeSetuid, os.ModeSetgid
	tests := []struct {
		name string
		make func(t *testing.T, p string)
		// what the file is after Collect (0: gone) and what the walk reports
		wantMode  os.FileMode
		wantFix   FixKind
		wantFound os.FileMode
		wantList  bool
	}{
		{name: "setuid", make: regular(0o755 | setuid), wantMode: 0o755, wantFix: FixSetid, wantFound: 0o755 | setuid, wantList: true},
		{name: "setgid", make: regular(0o750 | setgid), wantMode: 0o750, wantFix: FixSetid, wantFound: 0o750 | setgid, wantList: true},
		{name: "setuid and setgid", make: regular(0o4777 | setuid | setgid), wantMode: 0o777, wantFix: FixSetid, wantFound: 0o777 | setuid | setgid, wantList: true},
		{name: "setgid and sticky keeps sticky", make: regular(0o644 | setgid | os.ModeSticky), wantMode: 0o644 | os.ModeSticky, wantFix: FixSetid, wantFound: 0o644 | setgid | os.ModeSticky, wantList: true},
		{name: "plain file untouched", make: regular(0o755), wantMode: 0o755, wantList: true},
		{name: "block device", make: device(unix.S_IFBLK, 8, 0), wantFix: FixDevice, wantFound: 0o666 | fs.ModeDevice},
		{name: "char device", make: device(unix.S_IFCHR, 1, 3), wantFix: FixDevice, wantFound: 0o666 | fs.ModeDevice | fs.ModeCharDevice},
		{name: "whiteout-like char device 0:0", make: device(unix.S_IFCHR, 0, 0), wantFix: FixDevice, wantFound: 0o666 | fs.ModeDevice | fs.ModeCharDevice},
		{name: "fifo untouched", make: fifo, wantMode: 0o644 | fs.ModeNamedPipe},
	}
	for _, where := range []string{"top", "deep/er/dir", "bad-\xff-dir"} {
		for _, tt := range tests {
			t.Run(where+"/"+tt.name, func(t *testing.T) {
				dir := base(t)
				syscall.Umask(0)
				defer syscall.Umask(0o022)
				rel := "f"
				if where != "top" {
					rel = where + "/f"
				}
				p := filepath.Join(dir, rel)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				tt.make(t, p)
				m, err := Collect(context.Background(), "out", dir, 2)
				if err != nil {
					t.Fatalf("Collect(%q) = %v", dir, err)
				}
				fi, err := os.Lstat(p)
				switch {
				case tt.wantMode == 0 && err == nil:
					t.Errorf("after Collect, %q is %v, want it removed", rel, fi.Mode())
				case tt.wantMode == 0 && !os.IsNotExist(err):
					t.Errorf("Lstat(%q) after Collect = %v, want not exist", rel, err)
				case tt.wantMode != 0 && err != nil:
					t.Errorf("Lstat(%q) after Collect = %v, want mode %v", rel, err, tt.wantMode)
				case tt.wantMode != 0 && fi.Mode() != tt.wantMode:
					t.Errorf("after Collect, %q is %v, want %v", rel, fi.Mode(), tt.wantMode)
				}
				var want []Fix
				if tt.wantFix != 0 {
					want = []Fix{{Path: rel, Kind: tt.wantFix, Mode: tt.wantFound}}
				}
				if diff := cmp.Diff(want, m.Fixes); diff != "" {
					t.Errorf("Collect(%q).Fixes (-want +got):\n%s", dir, diff)
				}
				if m.FixCount != int64(len(want)) || m.FixFailures != 0 {
					t.Errorf("Collect(%q) FixCount, FixFailures = %d, %d, want %d, 0", dir, m.FixCount, m.FixFailures, len(want))
				}
				listed := tt.wantList && !strings.Contains(where, "\xff")
				if got := len(m.Files) == 1 && m.Files[0].Path == rel; got != listed {
					t.Errorf("Collect(%q).Files = %+v, want %q listed: %v", dir, m.Files, rel, listed)
				}
			})
		}
	}
}

// TestCollectNeverFollowsSymlinks: symlinks to setuid files and devices,
// inside the channel and outside it, are not followed: what they name is
// changed only when the walk reaches it inside the channel by itself.
func TestCollectNeverFollowsSymlinks(t *testing.T) {
	b := base(t)
	dir := filepath.Join(b, "out")
	outside := filepath.Join(b, "outside")
	writeFile(t, filepath.Join(outside, "suid"), []byte("x"))
	writeFile(t, filepath.Join(dir, "inner-suid"), []byte("y"))
	for _, p := range []string{filepath.Join(outside, "suid"), filepath.Join(dir, "inner-suid")} {
		if err := os.Chmod(p, 0o755|os.ModeSetuid|os.ModeSetgid); err != nil {
			t.Fatal(err)
		}
	}
	symlink(t, filepath.Join(outside, "suid"), filepath.Join(dir, "link-outside"))
	symlink(t, outside, filepath.Join(dir, "link-outside-dir"))
	symlink(t, "inner-suid", filepath.Join(dir, "link-inside"))
	if os.Geteuid() == 0 {
		if err := unix.Mknod(filepath.Join(outside, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		symlink(t, filepath.Join(outside, "null"), filepath.Join(dir, "link-device"))
	}

	m, err := Collect(context.Background(), "out", dir, 2)
	if err != nil {
		t.Fatalf("Collect(%q) = %v", dir, err)
	}
	if fi, err := os.Stat(filepath.Join(outside, "suid")); err != nil || fi.Mode() != 0o755|os.ModeSetuid|os.ModeSetgid {
		t.Errorf("setuid file outside the channel after Collect: %v, %v; want it untouched", fi.Mode(), err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "inner-suid")); err != nil || fi.Mode() != 0o755 {
		t.Errorf("setuid file inside the channel after Collect: %v, %v; want 0755", fi.Mode(), err)
	}
	if os.Geteuid() == 0 {
		if fi, err := os.Lstat(filepath.Join(outside, "null")); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
			t.Errorf("device outside the channel after Collect: %v; want it untouched", err)
		}
	}
	for _, l := range []string{"link-outside", "link-outside-dir", "link-inside", "link-device"} {
		if _, err := os.Lstat(filepath.Join(dir, l)); err != nil && (l != "link-device" || os.Geteuid() == 0) {
			t.Errorf("symlink %q after Collect: %v, want it left as it was", l, err)
		}
	}
	want := []Fix{{Path: "inner-suid", Kind: FixSetid, Mode: 0o755 | os.ModeSetuid | os.ModeSetgid}}
	if diff := cmp.Diff(want, m.Fixes); diff != "" {
		t.Errorf("Collect(%q).Fixes (-want +got):\n%s", dir, diff)
	}
}

// TestCollectMaxFiles: beyond Options.MaxFiles or MaxPathBytes files are
// not listed but counted, and still checked.
func TestCollectMaxFiles(t *testing.T) {
	dir := base(t)
	for i := range 10 {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("d%d/f%d", i%3, i)), []byte{byte(i)})
	}
	last := filepath.Join(dir, "z-last-suid")
	writeFile(t, last, []byte("z"))
	if err := os.Chmod(last, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	// Paths: d0/f0 … d2/f9 are 5 bytes each, z-last-suid 11.
	for _, tt := range []struct {
		name         string
		files, bytes int64
		listed, omit int64
	}{
		{name: "no files", files: 0, bytes: 1 << 20, listed: 0, omit: 11},
		{name: "no bytes", files: 100, bytes: 0, listed: 0, omit: 11},
		{name: "4 files", files: 4, bytes: 1 << 20, listed: 4, omit: 7},
		{name: "exactly all files", files: 11, bytes: 1 << 20, listed: 11, omit: 0},
		{name: "more than all files", files: 1000, bytes: 1 << 20, listed: 11, omit: 0},
		{name: "3 paths of bytes", files: 1000, bytes: 15, listed: 3, omit: 8},
		{name: "one byte short of 4 paths", files: 1000, bytes: 19, listed: 3, omit: 8},
		{name: "exactly all bytes", files: 1000, bytes: 10*5 + 11, listed: 11, omit: 0},
		{name: "last path does not fit", files: 1000, bytes: 10*5 + 10, listed: 10, omit: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.Chmod(last, 0o755|os.ModeSetuid); err != nil {
				t.Fatal(err)
			}
			o := Options{Workers: 2, MaxFiles: tt.files, MaxPathBytes: tt.bytes}
			m, err := CollectWith(context.Background(), "out", dir, o)
			if err != nil {
				t.Fatalf("CollectWith(%q, %+v) = %v", dir, o, err)
			}
			if m.FileCount != tt.listed || int64(len(m.Files)) != tt.listed || m.Omitted != tt.omit {
				t.Errorf("CollectWith(%q, %+v) = %d files (%d listed), %d omitted, want %d, %d", dir, o, m.FileCount, len(m.Files), m.Omitted, tt.listed, tt.omit)
			}
			if fi, _ := os.Lstat(last); fi.Mode() != 0o755 || m.FixCount != 1 {
				t.Errorf("CollectWith(%q, %+v): setuid file beyond the cap is %v with %d fixes, want 0755 and 1 fix", dir, o, fi.Mode(), m.FixCount)
			}
		})
	}
}

// TestCollectTooDeep: a directory nested beyond maxDepth is not walked but
// made root-only, and reported; the rest of the channel is listed.
func TestCollectTooDeep(t *testing.T) {
	dir := base(t)
	writeFile(t, filepath.Join(dir, "a"), []byte("a"))
	// Build the chain relative to an open directory: the full path is
	// longer than PATH_MAX.
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range maxDepth + 3 {
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	unix.Close(fd)
	m, err := Collect(context.Background(), "out", dir, 2)
	if err != nil {
		t.Fatalf("Collect(%q) = %v", dir, err)
	}
	if len(m.Files) != 1 || m.Files[0].Path != "a" {
		t.Errorf("Collect(%q).Files = %+v, want only a", dir, m.Files)
	}
	if len(m.Fixes) != 1 || m.Fixes[0].Kind != FixTooDeep || strings.Count(m.Fixes[0].Path, "/") != maxDepth-1 {
		t.Fatalf("Collect(%q).Fixes = %+v, want one FixTooDeep at depth %d", dir, m.Fixes, maxDepth)
	}
	if os.Geteuid() == 0 && m.Fixes[0].Err != nil {
		t.Errorf("FixTooDeep failed as root: %v", m.Fixes[0].Err)
	}
}

// TestFixString: each fix reads as a sentence naming the file.
func TestFixString(t *testing.T) {
	for _, tt := range []struct {
		f    Fix
		want string
	}{
		{Fix{Path: "bin/sh", Kind: FixSetid, Mode: 0o755 | os.ModeSetuid}, `setuid/setgid bits cleared on "bin/sh" (mode 4755, now 0755)`},
		{Fix{Path: "t", Kind: FixSetid, Mode: 0o777 | os.ModeSetuid | os.ModeSetgid | os.ModeSticky}, `setuid/setgid bits cleared on "t" (mode 7777, now 1777)`},
		{Fix{Path: "sda", Kind: FixDevice, Mode: 0o666 | os.ModeDevice}, `block device node "sda" (mode 0666) removed`},
		{Fix{Path: "x", Kind: FixSetid, Mode: 0o755 | os.ModeSetgid, Err: unix.EROFS}, `setuid/setgid file "x" (mode 2755) could not be cleared: read-only file system`},
		{Fix{Path: "bad-\xff", Kind: FixDevice, Mode: 0o600 | os.ModeDevice | os.ModeCharDevice}, `character device node "bad-\xff" (mode 0600) removed`},
		{Fix{Path: "d/d", Kind: FixTooDeep, Mode: 0o755 | os.ModeDir, Err: unix.EPERM}, `directory "d/d" is nested deeper than 512 levels: not walked, and could not be made root-only: operation not permitted`},
	} {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.f, got, tt.want)
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating device nodes needs root (CAP_MKNOD)")
	}
}

// TestChown: the directory itself changes owner, not its contents, and a
// symlinked directory is refused.
func TestChown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a directory's owner needs root (CAP_CHOWN)")
	}
	b := base(t)
	dir := filepath.Join(b, "out")
	writeFile(t, filepath.Join(dir, "f"), []byte("f"))
	symlink(t, dir, filepath.Join(b, "link"))
	if err := Chown(context.Background(), dir, 1234, 5678); err != nil {
		t.Fatalf("Chown(%q) = %v", dir, err)
	}
	for p, want := range map[string][2]uint32{dir: {1234, 5678}, filepath.Join(dir, "f"): {0, 0}} {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil || st.Uid != want[0] || st.Gid != want[1] {
			t.Errorf("after Chown, %q is owned by %d:%d (%v), want %d:%d", p, st.Uid, st.Gid, err, want[0], want[1])
		}
	}
	if err := Chown(context.Background(), filepath.Join(b, "link"), 1, 1); !errors.Is(err, ErrSymlink) {
		t.Errorf("Chown(symlink) = %v, want %v", err, ErrSymlink)
	}
}

// BenchmarkCollectCapped walks a channel of 30000 small files (one in 100
// setuid) with MaxFiles 10000, as a task over tasks.max_output_files does:
// the walk visits and checks every file, only the first 10000 are hashed.
// It reports walked files per second. Run it with -benchtime=1x.
func BenchmarkCollectCapped(b *testing.B) {
	const files, listed = 30000, 10000
	dir := base(b)
	for i := range files {
		p := filepath.Join(dir, fmt.Sprintf("d%03d/f%05d", i%300, i))
		writeFile(b, p, []byte{byte(i)})
		if i%100 == 0 {
			if err := os.Chmod(p, 0o755|os.ModeSetuid); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		m, err := CollectWith(context.Background(), "bench", dir, Options{MaxFiles: listed, MaxPathBytes: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		if m.FileCount != listed || m.Omitted != files-listed {
			b.Fatalf("CollectWith = %d listed, %d omitted, want %d, %d", m.FileCount, m.Omitted, listed, files-listed)
		}
	}
	b.ReportMetric(float64(files*b.N)/b.Elapsed().Seconds(), "files/s")
}
