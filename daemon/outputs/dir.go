package outputs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// openDir opens the directory dir, absolute, clean and not "/", without following any
// symlink on the way, creating missing elements when create is set, and
// returns it as an *os.Root.
//
// It walks from "/" one element at a time with openat(O_NOFOLLOW), so a
// symlink anywhere on the path is refused with ErrSymlink rather than
// followed, and nothing is created through one. It then opens dir by name as
// an os.Root and checks that it is the very directory the walk ended on,
// refusing with ErrSymlink if the path was swapped in between. Operations
// through the Root cannot leave it.
func openDir(ctx context.Context, dir string, create bool) (*os.Root, error) {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || strings.IndexByte(dir, 0) >= 0 || dir == "/" {
		return nil, fmt.Errorf("outputs: %q: %w", dir, ErrBadPath)
	}
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("outputs: open /: %w", err)
	}
	walked := "/"
	for name := range strings.SplitSeq(strings.TrimPrefix(dir, "/"), "/") {
		if err := ctx.Err(); err != nil {
			unix.Close(fd)
			return nil, err
		}
		walked = filepath.Join(walked, name)
		if create {
			if err := unix.Mkdirat(fd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return nil, fmt.Errorf("outputs: mkdir %q: %w", walked, err)
			}
		}
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			err = classify(fd, name, walked, err)
			unix.Close(fd)
			return nil, err
		}
		unix.Close(fd)
		fd = next
	}
	walkedDir := os.NewFile(uintptr(fd), dir)
	defer walkedDir.Close()

	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("outputs: %w", err)
	}
	want, err := walkedDir.Stat()
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("outputs: %w", err)
	}
	got, err := root.Stat(".")
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("outputs: %w", err)
	}
	if !os.SameFile(want, got) {
		root.Close()
		return nil, fmt.Errorf("outputs: %q was replaced while being opened: %w", dir, ErrSymlink)
	}
	return root, nil
}

// classify turns the failure of openat(parent, name, O_DIRECTORY|O_NOFOLLOW)
// into one of the package's errors; walked is the path of name.
func classify(parent int, name, walked string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("outputs: %q: %w", walked, ErrSymlink)
	case errors.Is(err, unix.ENOTDIR):
		var st unix.Stat_t
		if unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return fmt.Errorf("outputs: %q: %w", walked, ErrSymlink)
		}
		return fmt.Errorf("outputs: %q: %w", walked, ErrNotDirectory)
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("outputs: %q: %w", walked, fs.ErrNotExist)
	default:
		return fmt.Errorf("outputs: open %q: %w", walked, err)
	}
}
