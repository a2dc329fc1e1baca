package store

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"
)

// IDLen is the length of a task id.
const IDLen = 26

// crockford is Crockford's base32 alphabet: digits and upper-case letters
// without I, L, O and U.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// maxIDMillis is the largest timestamp 48 bits hold.
const maxIDMillis = 1<<48 - 1

// idGen hands out strictly increasing ids across the process.
var idGen = idGenerator{read: rand.Read}

// NewID returns a new task id for a task accepted at now: a 48-bit
// millisecond timestamp and 80 random bits, in 26 characters of Crockford
// base32, in the style of a ULID. Ids sort by time as strings. Within the
// process they strictly increase: an id made in the same millisecond as the
// previous one, or with a clock that went backwards, takes the previous id's
// timestamp and its random part plus one. NewID is safe for concurrent use.
func NewID(now time.Time) string {
	return idGen.next(now)
}

type idGenerator struct {
	read func([]byte) (int, error)

	mu     sync.Mutex
	ms     uint64
	hi     uint16 // top 16 of the 80 random bits
	lo     uint64 // low 64 of the 80 random bits
	primed bool
}

func (g *idGenerator) next(now time.Time) string {
	ms := uint64(max(now.UnixMilli(), 0))
	ms = min(ms, maxIDMillis)

	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.primed && ms <= g.ms && g.lo != ^uint64(0):
		ms = g.ms
		g.lo++
	case g.primed && ms <= g.ms && g.hi != ^uint16(0):
		ms = g.ms
		g.hi++
		g.lo = 0
	default:
		if g.primed && ms <= g.ms {
			// 80 random bits exhausted in one millisecond: borrow the next.
			ms = min(g.ms+1, maxIDMillis)
		}
		var b [10]byte
		if _, err := g.read(b[:]); err != nil {
			// crypto/rand.Read does not fail on supported platforms.
			panic(fmt.Sprintf("store: reading random bits: %v", err))
		}
		g.hi = binary.BigEndian.Uint16(b[:2])
		g.lo = binary.BigEndian.Uint64(b[2:])
	}
	g.ms, g.primed = ms, true
	return encodeID(ms, g.hi, g.lo)
}

// encodeID writes the 128 bits ms(48) ‖ hi(16) ‖ lo(64) as 26 base32
// characters, 5 bits each, the first holding the top 3.
func encodeID(ms uint64, hi uint16, lo uint64) string {
	// top holds the upper 64 bits, bottom the lower 64.
	top := ms<<16 | uint64(hi)
	bottom := lo
	var out [IDLen]byte
	for i := IDLen - 1; i >= 0; i-- {
		out[i] = crockford[bottom&0x1f]
		bottom = bottom>>5 | top<<59
		top >>= 5
	}
	return string(out[:])
}

// ValidID reports whether s is a task id as NewID writes it: 26 characters of
// upper-case Crockford base32 whose first character is at most '7'.
func ValidID(s string) bool {
	if len(s) != IDLen || s[0] > '7' {
		return false
	}
	for i := range len(s) {
		if decodeChar(s[i]) < 0 {
			return false
		}
	}
	return true
}

// IDTime returns the time encoded in id, to the millisecond.
func IDTime(id string) (time.Time, error) {
	if !ValidID(id) {
		return time.Time{}, fmt.Errorf("task id %q: %w", id, ErrInvalidArgument)
	}
	var ms uint64
	for i := range 10 {
		ms = ms<<5 | uint64(decodeChar(id[i]))
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}

func decodeChar(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		return strings.IndexByte(crockford, c)
	}
	return -1
}
