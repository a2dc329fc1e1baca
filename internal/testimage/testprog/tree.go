package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ls prints DIR's tree, one line per entry, in lexical order.
func (p *program) ls(args []string) error {
	root := args[0]
	var files, bytes int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == root {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		perm := info.Mode().Perm()
		switch {
		case d.IsDir():
			_, err = fmt.Fprintf(p.stdout, "d %04o - - %s/\n", perm, rel)
		case d.Type()&fs.ModeSymlink != 0:
			target, lerr := os.Readlink(path)
			if lerr != nil {
				return lerr
			}
			_, err = fmt.Fprintf(p.stdout, "l %04o - - %s -> %s\n", perm, rel, target)
		case d.Type().IsRegular():
			sum, size, herr := hashFile(path)
			if herr != nil {
				return herr
			}
			files++
			bytes += size
			_, err = fmt.Fprintf(p.stdout, "f %04o %d %s %s\n", perm, size, sum, rel)
		default:
			_, err = fmt.Fprintf(p.stdout, "o %04o - - %s\n", perm, rel)
		}
		return err
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(p.stdout, "total files=%d bytes=%d\n", files, bytes)
	return err
}

// hashFile returns the hex sha256 and size of a regular file.
func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// copyTree copies SRC's tree into DST: files, directories, symlinks.
func (p *program) copyTree(args []string) error {
	return walkInto(args[0], args[1], func(src, dst string, d fs.DirEntry) error {
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case d.Type().IsRegular():
			return copyFile(src, dst, nil)
		default:
			return fmt.Errorf("%s: cannot copy file of type %v", src, d.Type())
		}
	})
}

// transform writes each regular file of SRC into DST with ASCII letters
// upper-cased.
func (p *program) transform(args []string) error {
	return walkInto(args[0], args[1], func(src, dst string, d fs.DirEntry) error {
		if !d.Type().IsRegular() {
			fmt.Fprintf(p.stderr, "pctest: transform: skipping %s (not a regular file)\n", src)
			return nil
		}
		return copyFile(src, dst, upperASCII)
	})
}

// walkInto mirrors SRC's directories under DST (created if missing, with
// SRC's permissions) and calls leaf for every other entry.
func walkInto(srcRoot, dstRoot string, leaf func(src, dst string, d fs.DirEntry) error) error {
	return filepath.WalkDir(srcRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(srcRoot, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dstRoot, rel)
		if d.IsDir() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			return os.Chmod(dst, info.Mode().Perm())
		}
		return leaf(path, dst, d)
	})
}

// copyFile copies src to dst, keeping src's permissions, passing every
// chunk through edit when it is not nil.
func copyFile(src, dst string, edit func([]byte)) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		n, rerr := in.Read(buf)
		if n > 0 {
			if edit != nil {
				edit(buf[:n])
			}
			if _, err := out.Write(buf[:n]); err != nil {
				out.Close()
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			out.Close()
			return rerr
		}
	}
	return out.Close()
}

func upperASCII(b []byte) {
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
}
