package pattern

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
)

// LineLen is the length of one pattern line, newline included.
const LineLen = 64

const (
	digits   = 10
	alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	filler   = LineLen - digits - 2 // digits, space, filler, newline
)

// Line returns line i of the pattern (64 bytes, ending in '\n').
func Line(i int64) []byte {
	return appendLine(make([]byte, 0, LineLen), i)
}

func appendLine(b []byte, i int64) []byte {
	var num [digits]byte
	v := i
	for k := digits - 1; k >= 0; k-- {
		num[k] = byte('0' + v%10)
		v /= 10
	}
	b = append(b, num[:]...)
	b = append(b, ' ')
	off := int(i % int64(len(alphabet)))
	for k := range filler {
		b = append(b, alphabet[(off+k)%len(alphabet)])
	}
	return append(b, '\n')
}

// Reader yields the first n bytes of the pattern, then io.EOF.
type Reader struct {
	off, n int64
	line   []byte // the current line, valid for line number off/LineLen
	lineNo int64
}

// NewReader returns a reader of the first n bytes of the pattern.
func NewReader(n int64) *Reader {
	if n < 0 {
		n = 0
	}
	return &Reader{n: n, lineNo: -1, line: make([]byte, 0, LineLen)}
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	total := 0
	for len(p) > 0 && r.off < r.n {
		no := r.off / LineLen
		if no != r.lineNo {
			r.line = appendLine(r.line[:0], no)
			r.lineNo = no
		}
		rest := r.line[r.off%LineLen:]
		if left := r.n - r.off; int64(len(rest)) > left {
			rest = rest[:left]
		}
		c := copy(p, rest)
		p = p[c:]
		r.off += int64(c)
		total += c
	}
	return total, nil
}

// Bytes returns the first n bytes of the pattern.
func Bytes(n int64) []byte {
	b, _ := io.ReadAll(NewReader(n))
	return b
}

// Write writes the first n bytes of the pattern to w in large chunks.
func Write(w io.Writer, n int64) (int64, error) {
	return io.CopyBuffer(w, NewReader(n), make([]byte, 64<<10))
}

// SHA256 returns the hex sha256 of the first n bytes of the pattern.
func SHA256(n int64) string {
	h := sha256.New()
	if _, err := Write(h, n); err != nil {
		panic(err) // hash.Hash never fails
	}
	return hex.EncodeToString(h.Sum(nil))
}
