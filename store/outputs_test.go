package store

import (
	"errors"
	"testing"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestPageBudget(t *testing.T) {
	tests := []struct {
		name  string
		b     pageBudget
		adds  []int // sizes; negative: a non-item of that size
		wantN int   // how many fit before the first refusal
	}{
		{"bytes", pageBudget{maxBytes: 10, maxItems: 100}, []int{4, 4, 4}, 2},
		{"exactly full", pageBudget{maxBytes: 8, maxItems: 100}, []int{4, 4, 1}, 2},
		{"count", pageBudget{maxBytes: 1000, maxItems: 2}, []int{1, 1, 1}, 2},
		{"first item always fits", pageBudget{maxBytes: 1, maxItems: 1}, []int{50, 1}, 1},
		{"headers before the first item fit", pageBudget{maxBytes: 1, maxItems: 1}, []int{-50, -50, 50, -1}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			for _, a := range tc.adds {
				size, item := a, true
				if a < 0 {
					size, item = -a, false
				}
				if !tc.b.fits(size, item) {
					break
				}
				n++
			}
			if n != tc.wantN {
				t.Errorf("%d fit, want %d", n, tc.wantN)
			}
		})
	}
}

func FuzzPageOutputs(f *testing.F) {
	id := "01ARZ3NDEKTSV4RRFFQ69G5FAV"
	b, _ := encodeManifests([]*pcnodev1.OutputManifest{
		{Name: "a", Files: []*pcnodev1.OutputFile{{Path: "x"}, {Path: "y"}}},
		{Name: "b"},
	})
	f.Add(b, encodeOutputsToken(id, outputsPos{0, 1}), 1)
	f.Add(b, "", 0)
	f.Add([]byte{}, "T", 5)
	f.Fuzz(func(t *testing.T, b []byte, token string, pageSize int) {
		if pageSize < 0 {
			pageSize = -pageSize
		}
		page, next, err := pageOutputs(b, id, OutputsOptions{PageSize: pageSize, PageToken: token, MaxBytes: 64})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrInvalidPageToken) && !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("pageOutputs = %v, want ErrCorrupt, ErrInvalidPageToken or ErrInvalidArgument", err)
			}
			return
		}
		if next != "" {
			if _, err := decodeOutputsToken(next, id); err != nil {
				t.Fatalf("next token %q does not decode: %v", next, err)
			}
			if next == token {
				t.Fatalf("next token %q equals the request's: paging would not end", next)
			}
			if len(page) == 0 {
				t.Fatal("an empty page with a next token")
			}
		}
	})
}
