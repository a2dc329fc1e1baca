package store

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestFinishKeyOrder(t *testing.T) {
	times := []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(-1, 999999999),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 1, 0, 0, 0, 1, time.UTC),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		a, b := finishKey(times[i-1], "ZZ"), finishKey(times[i], "00")
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("finishKey(%v) >= finishKey(%v), want time order", times[i-1], times[i])
		}
	}
}

func TestIdempotencyCodec(t *testing.T) {
	id := "01ARZ3NDEKTSV4RRFFQ69G5FAV"
	for _, hash := range [][]byte{nil, {1}, bytes.Repeat([]byte{7}, 32)} {
		gotID, gotHash, err := decodeIdempotency(encodeIdempotency(id, hash))
		if err != nil || gotID != id || !bytes.Equal(gotHash, hash) {
			t.Errorf("decodeIdempotency(encode(%q, %x)) = %q, %x, %v", id, hash, gotID, gotHash, err)
		}
	}
	for _, bad := range [][]byte{nil, {0x80}, {30, 'a'}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		if _, _, err := decodeIdempotency(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeIdempotency(%x) = %v, want %v", bad, err, ErrCorrupt)
		}
	}
}

func TestManifestsCodec(t *testing.T) {
	ms := []*pcnodev1.OutputManifest{
		{Name: "a", Files: []*pcnodev1.OutputFile{{Path: "x", SizeBytes: 3, Sha256: "00"}}, FileCount: 1, TotalBytes: 3},
		{},
		{Name: "c", HostPath: "/data/c"},
	}
	b, err := encodeManifests(ms)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeManifests(b)
	if d := cmp.Diff(ms, got, protocmp.Transform()); err != nil || d != "" {
		t.Errorf("decodeManifests(encodeManifests()) = %v, diff (-want +got):\n%s", err, d)
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"truncated", b[:len(b)-1]},
		{"other field", append([]byte{0x12, 0}, b...)},
		{"varint field", []byte{0x08, 1}},
		{"bad manifest", []byte{0x0a, 2, 0xff, 0xff}},
	}
	for _, tt := range tests {
		if _, err := decodeManifests(tt.b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeManifests(%s %x) = %v, want %v", tt.name, tt.b, err, ErrCorrupt)
		}
	}
}

// Check finds records and indexes that disagree.
func TestCheckFindsCorruption(t *testing.T) {
	final := &pcnodev1.Task{Id: NewID(time.Now()), State: pcnodev1.TaskState_TASK_STATE_SUCCEEDED, FinishTime: timestamppb.Now()}
	tests := []struct {
		name   string
		damage func(bk *buckets) error
	}{
		{"by_state entry missing", func(bk *buckets) error {
			return bk.byState.Delete(stateKey(final.GetState(), final.GetId()))
		}},
		{"by_state entry of another state", func(bk *buckets) error {
			return bk.byState.Put(stateKey(pcnodev1.TaskState_TASK_STATE_RUNNING, final.GetId()), nil)
		}},
		{"by_finish entry missing", func(bk *buckets) error {
			when, _ := retentionTime(final)
			return bk.byFinish.Delete(finishKey(when, final.GetId()))
		}},
		{"idempotency entry missing", func(bk *buckets) error { return bk.idempotency.Delete([]byte("k")) }},
		{"idempotency entry of no task", func(bk *buckets) error {
			return bk.idempotency.Put([]byte("other"), encodeIdempotency(NewID(time.Now()), nil))
		}},
		{"outputs of no task", func(bk *buckets) error { return bk.outputs.Put([]byte("gone"), nil) }},
		{"undecodable task", func(bk *buckets) error { return bk.tasks.Put([]byte(final.GetId()), []byte{0xff}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(filepath.Join(t.TempDir(), "db"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			if _, _, err := db.CreateTask(ctx, final, "k", nil); err != nil {
				t.Fatal(err)
			}
			if err := db.Check(ctx); err != nil {
				t.Fatalf("Check() before damage = %v", err)
			}
			if err := db.update(ctx, func(_ *bolt.Tx, bk *buckets) error { return tt.damage(bk) }); err != nil {
				t.Fatal(err)
			}
			if err := db.Check(ctx); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Check() after %s = %v, want %v", tt.name, err, ErrCorrupt)
			}
		})
	}
}

func TestPageToken(t *testing.T) {
	id := "01ARZ3NDEKTSV4RRFFQ69G5FAV"
	f := filterHash([]pcnodev1.TaskState{1, 3}, map[string]string{"a": "b"})
	got, err := decodePageToken(encodePageToken(id, f), f)
	if err != nil || got != id {
		t.Errorf("decodePageToken(encodePageToken(%q)) = %q, %v", id, got, err)
	}
	// Filters that differ only in where bytes fall between keys and values
	// hash differently.
	pairs := [][2]map[string]string{
		{{"ab": "c"}, {"a": "bc"}},
		{{"a": ""}, {}},
		{{"a": "b", "c": "d"}, {"a": "bc", "": "d"}},
	}
	for _, p := range pairs {
		if filterHash(nil, p[0]) == filterHash(nil, p[1]) {
			t.Errorf("filterHash(%v) == filterHash(%v)", p[0], p[1])
		}
	}
	if filterHash([]pcnodev1.TaskState{1}, nil) == filterHash(nil, nil) {
		t.Errorf("filterHash(states [1]) == filterHash(no states)")
	}
}

// Only the exact strings encodePageToken makes are tokens: another spelling
// of the same bytes is refused, so every position has one token.
func TestDecodePageTokenCanonical(t *testing.T) {
	f := filterHash(nil, nil)
	id := "3MASM4NMAKMAWMASMASM4GMACP"
	token := encodePageToken(id, f)
	if got, err := decodePageToken(token, f); err != nil || got != id {
		t.Fatalf("decodePageToken(%q) = %q, %v, want %q, nil", token, got, err, id)
	}
	// The last of 47 characters carries 2 padding bits, zero when canonical.
	last := strings.IndexByte(base64URL, token[len(token)-1])
	tests := []struct {
		name  string
		token string
	}{
		// Found by FuzzDecodePageToken: the token of id with padding bits set.
		{"fuzz crasher 31fc4b9d6ac0671b", "AZailtIk8oXGM01BU000Tk1BS01BV01BU01BU000R01BQ1B"},
		{"fuzz crasher b114d7a212de0f53", "AZailtIk8oXGM01BU000Tk1BS1BBV01BU01BU000R01BQ01"},
		{"low padding bit", token[:len(token)-1] + string(base64URL[last|1])},
		{"high padding bit", token[:len(token)-1] + string(base64URL[last|2])},
		{"line break inside", token[:20] + "\n" + token[20:]},
		{"line break inside, same length", token[:20] + "\n" + token[20:len(token)-1]},
		{"CRLF at the end", token + "\r\n"},
		{"padded", token + "="},
		{"standard alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(token) + "+"},
		{"truncated", token[:len(token)-1]},
		{"one character more", token + "A"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.token == token {
				t.Fatalf("case %q is the canonical token", tt.token)
			}
			if got, err := decodePageToken(tt.token, f); !errors.Is(err, ErrInvalidPageToken) {
				t.Errorf("decodePageToken(%q) = %q, %v, want %v", tt.token, got, err, ErrInvalidPageToken)
			}
		})
	}
}

// base64URL is the alphabet of page tokens, in value order.
const base64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func FuzzDecodePageToken(f *testing.F) {
	f.Add(encodePageToken("01ARZ3NDEKTSV4RRFFQ69G5FAV", filterHash(nil, nil)))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, token string) {
		id, err := decodePageToken(token, filterHash(nil, nil))
		if err != nil {
			if !errors.Is(err, ErrInvalidPageToken) {
				t.Fatalf("decodePageToken(%q) = %v, want %v", token, err, ErrInvalidPageToken)
			}
			return
		}
		if !ValidID(id) || encodePageToken(id, filterHash(nil, nil)) != token {
			t.Errorf("decodePageToken(%q) = %q, which does not encode back", token, id)
		}
	})
}

func FuzzDecodeManifests(f *testing.F) {
	b, _ := encodeManifests([]*pcnodev1.OutputManifest{{Name: "a", Files: []*pcnodev1.OutputFile{{Path: "x"}}}})
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := decodeManifests(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeManifests(%x) = %v, want %v", b, err, ErrCorrupt)
			}
			return
		}
		if slices.Contains(ms, nil) {
			t.Fatalf("decodeManifests(%x) returned a nil manifest", b)
		}
		if _, err := encodeManifests(ms); err != nil {
			t.Errorf("encodeManifests(decodeManifests(%x)) = %v", b, err)
		}
	})
}
