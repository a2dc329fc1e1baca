package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pcnode/pcnode/store"
)

func testNodeState(t *testing.T, open Opener) {
	s := open(t)
	got, err := s.GetNodeState(ctx())
	if err != nil || got.Draining || len(got.GPUMarks) != 0 {
		t.Fatalf("GetNodeState() of a new store = %+v, %v, want not draining, no marks", got, err)
	}
	xid := store.GPUMark{Kind: "xid", XID: 79, Time: base, Message: "GPU has fallen off the bus at 2026-03-01T12:00:00Z"}
	ecc := store.GPUMark{Kind: "double_bit_ecc", Time: base.Add(time.Minute), Message: "double-bit (uncorrected) ECC error"}
	steps := []struct {
		name string
		do   func() error
		want store.NodeState
	}{
		{"drain", func() error { return s.SetDraining(ctx(), true) }, store.NodeState{Draining: true}},
		{"drain twice", func() error { return s.SetDraining(ctx(), true) }, store.NodeState{Draining: true}},
		{"mark", func() error { return s.PutGPUMark(ctx(), "GPU-a", xid) }, store.NodeState{Draining: true, GPUMarks: map[string]store.GPUMark{"GPU-a": xid}}},
		{"mark another", func() error { return s.PutGPUMark(ctx(), "GPU-b", ecc) },
			store.NodeState{Draining: true, GPUMarks: map[string]store.GPUMark{"GPU-a": xid, "GPU-b": ecc}}},
		{"mark replaced", func() error { return s.PutGPUMark(ctx(), "GPU-a", ecc) },
			store.NodeState{Draining: true, GPUMarks: map[string]store.GPUMark{"GPU-a": ecc, "GPU-b": ecc}}},
		{"resume", func() error { return s.SetDraining(ctx(), false) }, store.NodeState{GPUMarks: map[string]store.GPUMark{"GPU-a": ecc, "GPU-b": ecc}}},
		{"clear", func() error { return s.DeleteGPUMark(ctx(), "GPU-a") }, store.NodeState{GPUMarks: map[string]store.GPUMark{"GPU-b": ecc}}},
		{"clear one without a mark", func() error { return s.DeleteGPUMark(ctx(), "GPU-zz") }, store.NodeState{GPUMarks: map[string]store.GPUMark{"GPU-b": ecc}}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := s.GetNodeState(ctx())
		if err != nil {
			t.Fatalf("%s: GetNodeState() = %v", st.name, err)
		}
		if st.want.GPUMarks == nil {
			st.want.GPUMarks = map[string]store.GPUMark{}
		}
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("%s: GetNodeState() mismatch (-want +got):\n%s", st.name, diff)
		}
	}
	// What GetNodeState returns is a copy.
	got, _ = s.GetNodeState(ctx())
	delete(got.GPUMarks, "GPU-b")
	if again, _ := s.GetNodeState(ctx()); len(again.GPUMarks) != 1 {
		t.Errorf("GetNodeState() after changing a returned state = %+v, want GPU-b still marked", again)
	}
}

func testNodeStateInvalid(t *testing.T, open Opener) {
	s := open(t)
	good := store.GPUMark{Kind: "xid", XID: 48, Time: base, Message: "double bit ECC error"}
	tests := []struct {
		name string
		uuid string
		mark store.GPUMark
	}{
		{"empty uuid", "", good},
		{"uuid with a space", "GPU a", good},
		{"uuid with a newline", "GPU-a\n", good},
		{"long uuid", "GPU-" + strings.Repeat("a", store.MaxGPUUUIDLen), good},
		{"no kind", "GPU-a", store.GPUMark{XID: 48, Time: base}},
		{"long kind", "GPU-a", store.GPUMark{Kind: strings.Repeat("k", store.MaxGPUMarkKindLen+1), Time: base}},
		{"negative xid", "GPU-a", store.GPUMark{Kind: "xid", XID: -1, Time: base}},
		{"no time", "GPU-a", store.GPUMark{Kind: "xid", XID: 48}},
		{"long message", "GPU-a", store.GPUMark{Kind: "xid", Time: base, Message: strings.Repeat("m", store.MaxGPUMarkMessageLen+1)}},
		{"message not UTF-8", "GPU-a", store.GPUMark{Kind: "xid", Time: base, Message: "\xff"}},
	}
	for _, tt := range tests {
		if err := s.PutGPUMark(ctx(), tt.uuid, tt.mark); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("PutGPUMark(%q, %s) = %v, want %v", tt.uuid, tt.name, err, store.ErrInvalidArgument)
		}
	}
	if err := s.DeleteGPUMark(ctx(), ""); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("DeleteGPUMark(\"\") = %v, want %v", err, store.ErrInvalidArgument)
	}
	if got, err := s.GetNodeState(ctx()); err != nil || len(got.GPUMarks) != 0 {
		t.Errorf("GetNodeState() after refused marks = %+v, %v, want no marks", got, err)
	}
}
