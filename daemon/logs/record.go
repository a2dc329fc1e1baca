package logs

import (
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"strings"
	"time"
)

// MaxEntryBytes is the largest entry: longer lines are cut into pieces of
// this size.
const MaxEntryBytes = 64 << 10

const (
	// segmentMagic opens every segment; its last byte is the format version.
	segmentMagic = "pclog\x00\x00\x01"
	// recordHeaderLen is the size of a record without its data.
	recordHeaderLen = 25
)

// kind is a record's type byte; stdout and stderr share their values with
// Stream.
type kind uint8

const (
	kindStdout kind = 1
	kindStderr kind = 2
	kindEnd    kind = 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is one decoded record; data aliases the decoded buffer.
type record struct {
	seq  uint64
	nano int64
	kind kind
	data []byte
}

// encodedLen is the size of r on disk.
func (r record) encodedLen() int { return recordHeaderLen + len(r.data) }

// putHeader fills hdr (recordHeaderLen bytes) for r, checksum included.
func (r record) putHeader(hdr []byte) {
	binary.LittleEndian.PutUint32(hdr[4:], uint32(len(r.data)))
	binary.LittleEndian.PutUint64(hdr[8:], r.seq)
	binary.LittleEndian.PutUint64(hdr[16:], uint64(r.nano))
	hdr[24] = byte(r.kind)
	sum := crc32.Update(0, castagnoli, hdr[4:recordHeaderLen])
	sum = crc32.Update(sum, castagnoli, r.data)
	binary.LittleEndian.PutUint32(hdr[0:], sum)
}

// appendRecord appends the encoding of r to b.
func appendRecord(b []byte, r record) []byte {
	var hdr [recordHeaderLen]byte
	r.putHeader(hdr[:])
	return append(append(b, hdr[:]...), r.data...)
}

// recordLen returns the full length of the record whose header starts b, or
// errShort when b is shorter than a header, or ErrCorrupt when the header
// cannot be valid.
func recordLen(b []byte) (int, error) {
	if len(b) < recordHeaderLen {
		return 0, errShort
	}
	n := binary.LittleEndian.Uint32(b[4:])
	if n > MaxEntryBytes {
		return 0, corrupt("record length " + itoa(n) + " exceeds " + itoa(MaxEntryBytes))
	}
	switch k := kind(b[24]); k {
	case kindStdout, kindStderr:
	case kindEnd:
		if n != 0 {
			return 0, corrupt("end marker with " + itoa(n) + " bytes of data")
		}
	default:
		return 0, corrupt("unknown record kind " + itoa(uint8(k)))
	}
	return recordHeaderLen + int(n), nil
}

// decodeRecord decodes the record at the start of b and returns it with its
// encoded length. It returns errShort when b holds only part of a record and
// an error wrapping ErrCorrupt when the record is invalid.
func decodeRecord(b []byte) (record, int, error) {
	n, err := recordLen(b)
	if err != nil {
		return record{}, 0, err
	}
	if len(b) < n {
		return record{}, 0, errShort
	}
	want := binary.LittleEndian.Uint32(b[0:])
	if got := crc32.Checksum(b[4:n], castagnoli); got != want {
		return record{}, 0, corrupt("checksum " + hex32(got) + ", want " + hex32(want))
	}
	return record{
		seq:  binary.LittleEndian.Uint64(b[8:]),
		nano: int64(binary.LittleEndian.Uint64(b[16:])),
		kind: kind(b[24]),
		data: b[recordHeaderLen:n:n],
	}, n, nil
}

// Stream names an output stream of a container.
type Stream uint8

const (
	// StreamBoth selects both streams in ReadOptions; entries never carry it.
	StreamBoth Stream = 0
	// StreamStdout is standard output.
	StreamStdout Stream = 1
	// StreamStderr is standard error.
	StreamStderr Stream = 2
)

// String returns "stdout", "stderr" or "both".
func (s Stream) String() string {
	switch s {
	case StreamBoth:
		return "both"
	case StreamStdout:
		return "stdout"
	case StreamStderr:
		return "stderr"
	}
	return "Stream(" + itoa(uint8(s)) + ")"
}

// Entry is one entry of a log.
type Entry struct {
	// Seq is the entry's position in the log, from 1, without gaps.
	Seq uint64
	// Time is when the driver read the entry.
	Time time.Time
	// Stream is StreamStdout or StreamStderr.
	Stream Stream
	// Data is the line including its newline, a final line without one, or
	// a piece of an over-long line.
	Data []byte
}

// hex32 is %08x.
func hex32(v uint32) string {
	h := strconv.FormatUint(uint64(v), 16)
	return strings.Repeat("0", 8-len(h)) + h
}
