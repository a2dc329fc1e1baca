package store

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

func TestNewIDFormat(t *testing.T) {
	tests := []struct {
		name string
		now  time.Time
		want string // prefix: the encoded time
	}{
		{"epoch", time.Unix(0, 0), "0000000000"},
		{"before epoch clamps", time.Unix(-10, 0), "0000000000"},
		{"ulid spec example", time.UnixMilli(1469918176385), "01ARYZ6S41"},
		{"max time", time.UnixMilli(maxIDMillis), "7ZZZZZZZZZ"},
		{"beyond max clamps", time.UnixMilli(maxIDMillis).Add(time.Hour), "7ZZZZZZZZZ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := idGenerator{read: readZeros}
			id := g.next(tt.now)
			if !strings.HasPrefix(id, tt.want) || !ValidID(id) {
				t.Errorf("next(%v) = %q, want prefix %q and a valid id", tt.now, id, tt.want)
			}
			got, err := IDTime(id)
			want := time.UnixMilli(min(max(tt.now.UnixMilli(), 0), maxIDMillis)).UTC()
			if err != nil || !got.Equal(want) {
				t.Errorf("IDTime(%q) = %v, %v, want %v", id, got, err, want)
			}
		})
	}
}

func readZeros(b []byte) (int, error) { clear(b); return len(b), nil }

// readFixed returns a reader yielding hi, lo as the 80 random bits.
func readFixed(hi uint16, lo uint64) func([]byte) (int, error) {
	return func(b []byte) (int, error) {
		binary.BigEndian.PutUint16(b, hi)
		binary.BigEndian.PutUint64(b[2:], lo)
		return len(b), nil
	}
}

func TestNewIDMonotonic(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		read  func([]byte) (int, error)
		times []time.Time
	}{
		{"same millisecond", readFixed(0x1234, 0x5678), []time.Time{now, now, now, now.Add(time.Microsecond)}},
		{"clock goes back", readFixed(0, 0), []time.Time{now, now.Add(-time.Hour), now.Add(-time.Second)}},
		{"low word carries", readFixed(0, ^uint64(0)-1), []time.Time{now, now, now, now}},
		{"random bits exhausted", readFixed(^uint16(0), ^uint64(0)-1), []time.Time{now, now, now, now}},
		{"new millisecond", readFixed(^uint16(0), ^uint64(0)), []time.Time{now, now.Add(time.Millisecond), now.Add(2 * time.Millisecond)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := idGenerator{read: tt.read}
			prev := ""
			for i, at := range tt.times {
				id := g.next(at)
				if !ValidID(id) || id <= prev {
					t.Fatalf("next(%v) #%d = %q, want a valid id above %q", at, i, id, prev)
				}
				got, _ := IDTime(id)
				if got.Before(now) || got.After(now.Add(time.Second)) {
					t.Errorf("IDTime(next #%d) = %v, want near %v", i, got, now)
				}
				prev = id
			}
		})
	}

	t.Run("package NewID", func(t *testing.T) {
		prev := ""
		for i := range 10000 {
			id := NewID(now)
			if id <= prev {
				t.Fatalf("NewID(same time) #%d = %q, not above %q", i, id, prev)
			}
			prev = id
		}
	})
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"01ARZ3NDEKTSV4RRFFQ69G5FAV", true},
		{"7ZZZZZZZZZZZZZZZZZZZZZZZZZ", true},
		{"00000000000000000000000000", true},
		{"", false},
		{"01ARZ3NDEKTSV4RRFFQ69G5FA", false},   // short
		{"01ARZ3NDEKTSV4RRFFQ69G5FAVX", false}, // long
		{"81ARZ3NDEKTSV4RRFFQ69G5FAV", false},  // overflows 128 bits
		{"01arz3ndektsv4rrffq69g5fav", false},  // lower case
		{"01ARZ3NDEKTSV4RRFFQ69G5FAI", false},  // I
		{"01ARZ3NDEKTSV4RRFFQ69G5FAL", false},  // L
		{"01ARZ3NDEKTSV4RRFFQ69G5FAO", false},  // O
		{"01ARZ3NDEKTSV4RRFFQ69G5FAU", false},  // U
		{"01ARZ3NDEKTSV4RRFFQ69G5FA/", false},
		{"../../../../../../../etc/p", false},
		{"01ARZ3NDEKTSV4RRFFQ69G5FA\x00", false},
	}
	for _, tt := range tests {
		if got := ValidID(tt.id); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
	if _, err := IDTime("nope"); err == nil {
		t.Errorf("IDTime(%q) = nil error, want one", "nope")
	}
}

func FuzzValidID(f *testing.F) {
	f.Add("01ARZ3NDEKTSV4RRFFQ69G5FAV")
	f.Add("7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidID(s) {
			return
		}
		// A valid id round-trips through its time and random bits.
		when, err := IDTime(s)
		if err != nil {
			t.Fatalf("IDTime(%q) = %v for a valid id", s, err)
		}
		var hi uint16
		var lo uint64
		for i := 10; i < IDLen; i++ {
			v := uint64(decodeChar(s[i]))
			hi = hi<<5 | uint16(lo>>59)
			lo = lo<<5 | v
		}
		if got := encodeID(uint64(when.UnixMilli()), hi, lo); got != s {
			t.Errorf("encodeID(decode(%q)) = %q", s, got)
		}
	})
}
