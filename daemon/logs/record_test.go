package logs

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  record
	}{
		{"stdout line", record{seq: 1, nano: 1700000000123456789, kind: kindStdout, data: []byte("hello\n")}},
		{"stderr empty", record{seq: 42, nano: -5, kind: kindStderr, data: []byte{}}},
		{"binary bytes", record{seq: 1<<63 + 7, nano: 0, kind: kindStdout, data: []byte{0, 0xff, '\n', 0x80}}},
		{"largest", record{seq: 9, nano: 1, kind: kindStderr, data: bytes.Repeat([]byte{'x'}, MaxEntryBytes)}},
		{"end marker", record{seq: 12, nano: 3, kind: kindEnd, data: []byte{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := appendRecord(nil, tc.rec)
			if len(b) != tc.rec.encodedLen() {
				t.Fatalf("len(appendRecord) = %d, want %d", len(b), tc.rec.encodedLen())
			}
			got, n, err := decodeRecord(append(b, "trailing"...))
			if err != nil || n != len(b) {
				t.Fatalf("decodeRecord(%q) = _, %d, %v, want %d, nil", b, n, err, len(b))
			}
			if diff := cmp.Diff(tc.rec, got, cmp.AllowUnexported(record{})); diff != "" {
				t.Errorf("decodeRecord mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	good := appendRecord(nil, record{seq: 3, nano: 4, kind: kindStdout, data: []byte("abc\n")})
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 1
		return b
	}
	tooLong := bytes.Clone(good)
	tooLong[6] = 0x10 // length 0x100004 > MaxEntryBytes
	endWithData := appendRecord(nil, record{seq: 3, kind: kindEnd})
	endWithData[4] = 1
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, errShort},
		{"partial header", good[:recordHeaderLen-1], errShort},
		{"partial data", good[:len(good)-1], errShort},
		{"bad checksum", flip(0), ErrCorrupt},
		{"flipped seq", flip(9), ErrCorrupt},
		{"flipped data", flip(len(good) - 2), ErrCorrupt},
		{"unknown kind", flip(24), ErrCorrupt},
		{"too long", tooLong, ErrCorrupt},
		{"end marker with data", endWithData, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeRecord(tc.b)
			if !errors.Is(err, tc.want) {
				t.Errorf("decodeRecord(%q) = %v, want %v", tc.b, err, tc.want)
			}
		})
	}
}

func TestSegmentName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first uint64
		ok    bool
	}{
		{"00000000000000000001.log", 1, true},
		{"18446744073709551615.log", 1<<64 - 1, true},
		{"00000000000000000000.log", 0, false},
		{"99999999999999999999.log", 0, false},
		{"0000000000000000001.log", 0, false},
		{"0000000000000000000a.log", 0, false},
		{"00000000000000000001.txt", 0, false},
		{"lock", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, ok := parseSegmentName(tc.name)
			if first != tc.first || ok != tc.ok {
				t.Errorf("parseSegmentName(%q) = %d, %v, want %d, %v", tc.name, first, ok, tc.first, tc.ok)
			}
			if ok && segmentName(first) != tc.name {
				t.Errorf("segmentName(%d) = %q, want %q", first, segmentName(first), tc.name)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, record{seq: 1, nano: 2, kind: kindStdout, data: []byte("line\n")}))
	f.Add(appendRecord(nil, record{seq: 5, kind: kindEnd}))
	f.Add([]byte(strings.Repeat("\xff", recordHeaderLen+3)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, errShort) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeRecord(%q) = %v, want errShort or ErrCorrupt", b, err)
			}
			return
		}
		if n > len(b) || n != rec.encodedLen() || len(rec.data) > MaxEntryBytes {
			t.Fatalf("decodeRecord(%q) = length %d of %d with %d data bytes", b, n, len(b), len(rec.data))
		}
		if again := appendRecord(nil, rec); !bytes.Equal(again, b[:n]) {
			t.Fatalf("appendRecord(decodeRecord(%q)) = %q, want the input", b[:n], again)
		}
	})
}
