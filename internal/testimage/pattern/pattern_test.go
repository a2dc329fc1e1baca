package pattern

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"
	"testing/iotest"
)

func TestLine(t *testing.T) {
	tests := []struct {
		i    int64
		want string
	}{
		{0, "0000000000 abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n"},
		{1, "0000000001 bcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0\n"},
		{62, "0000000062 abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n"},
		{1234567, "0001234567 xyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklm\n"},
	}
	for _, tt := range tests {
		got := string(Line(tt.i))
		if got != tt.want {
			t.Errorf("Line(%d) = %q, want %q", tt.i, got, tt.want)
		}
		if len(got) != LineLen {
			t.Errorf("len(Line(%d)) = %d, want %d", tt.i, len(got), LineLen)
		}
	}
}

func TestBytes(t *testing.T) {
	full := append(append(Line(0), Line(1)...), Line(2)...)
	for _, n := range []int64{0, 1, 63, 64, 65, 128, 150, 192} {
		want := full[:n]
		if got := Bytes(n); !bytes.Equal(got, want) {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	if got := Bytes(-5); len(got) != 0 {
		t.Errorf("Bytes(-5) = %q, want empty", got)
	}
}

func TestReaderSmallReads(t *testing.T) {
	const n = 10*LineLen + 17
	got, err := io.ReadAll(iotest.OneByteReader(NewReader(n)))
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if want := Bytes(n); !bytes.Equal(got, want) {
		t.Errorf("one-byte reads of %d bytes differ from Bytes(%d)", n, n)
	}
	if err := iotest.TestReader(NewReader(n), Bytes(n)); err != nil {
		t.Errorf("iotest.TestReader: %v", err)
	}
}

func TestSHA256(t *testing.T) {
	for _, n := range []int64{0, 5, 1 << 20} {
		sum := sha256.Sum256(Bytes(n))
		if got, want := SHA256(n), hex.EncodeToString(sum[:]); got != want {
			t.Errorf("SHA256(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestDummyUpstreamUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range DummyUpstream {
		k := f.Channel + "/" + f.Path
		if seen[k] {
			t.Errorf("DummyUpstream has %q twice", k)
		}
		seen[k] = true
		if f.Size <= 0 {
			t.Errorf("DummyUpstream %q has size %d, want > 0", k, f.Size)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	const n = 50 << 20
	b.SetBytes(n)
	for b.Loop() {
		if _, err := Write(io.Discard, n); err != nil {
			b.Fatal(err)
		}
	}
}
