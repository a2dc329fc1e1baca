package store

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// A page token is base64url (unpadded) of
//
//	tokenVersion(1 byte) ‖ filter hash (8 bytes) ‖ last listed id (26 bytes)
//
// The filter hash ties a token to the States and Labels it was made for, so a
// token replayed with other filters is refused instead of silently skipping
// or repeating tasks. Tokens are not secret: they only name a position.
//
// Tokens are opaque and only ListTasks makes them, so decodePageToken accepts
// exactly the strings encodePageToken returns: one token per position, never
// another spelling of it (base64 with non-zero padding bits, or with the line
// breaks Go's decoder skips).

const (
	tokenVersion  = 1
	filterHashLen = 8
	tokenLen      = 1 + filterHashLen + IDLen
)

// tokenEncoding refuses non-zero padding bits in the last character.
var tokenEncoding = base64.RawURLEncoding.Strict()

// filterHash digests the filters of a listing; states must be sorted.
func filterHash(states []pcnodev1.TaskState, labels map[string]string) [filterHashLen]byte {
	h := sha256.New()
	var b [binary.MaxVarintLen64]byte
	writeLen := func(n int) { h.Write(b[:binary.PutUvarint(b[:], uint64(n))]) }
	writeLen(len(states))
	for _, s := range states {
		writeLen(int(s))
	}
	writeLen(len(labels))
	for _, k := range sortedLabels(labels) {
		writeLen(len(k))
		h.Write([]byte(k))
		writeLen(len(labels[k]))
		h.Write([]byte(labels[k]))
	}
	var out [filterHashLen]byte
	copy(out[:], h.Sum(nil))
	return out
}

func encodePageToken(lastID string, filter [filterHashLen]byte) string {
	b := make([]byte, 0, tokenLen)
	b = append(b, tokenVersion)
	b = append(b, filter[:]...)
	b = append(b, lastID...)
	return tokenEncoding.EncodeToString(b)
}

// decodePageToken returns the id a token continues after.
func decodePageToken(token string, filter [filterHashLen]byte) (string, error) {
	// The exact length of a canonical token: with it, skipped line breaks
	// leave too few bytes, and nothing long is decoded at all.
	if len(token) != tokenEncoding.EncodedLen(tokenLen) {
		return "", fmt.Errorf("malformed page token: %w", ErrInvalidPageToken)
	}
	b, err := tokenEncoding.DecodeString(token)
	if err != nil || len(b) != tokenLen || b[0] != tokenVersion {
		return "", fmt.Errorf("malformed page token: %w", ErrInvalidPageToken)
	}
	if [filterHashLen]byte(b[1:1+filterHashLen]) != filter {
		return "", fmt.Errorf("page token was made for other states or labels: %w", ErrInvalidPageToken)
	}
	id := string(b[1+filterHashLen:])
	if !ValidID(id) {
		return "", fmt.Errorf("malformed page token: %w", ErrInvalidPageToken)
	}
	return id, nil
}
