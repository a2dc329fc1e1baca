package store

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// matchesEncoded says what decoding and matches say, on encodings that
// proto.Marshal writes and on those it never writes but a decoder takes
// (fields repeated, out of order, of another wire type, map entries
// without key or value), and fails on malformed ones as decoding does.
func TestMatchesEncoded(t *testing.T) {
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	state := func(b []byte, s pcnodev1.TaskState) []byte {
		return protowire.AppendVarint(tag(b, taskStateField, protowire.VarintType), uint64(s))
	}
	str := func(b []byte, num protowire.Number, s string) []byte {
		return protowire.AppendString(tag(b, num, protowire.BytesType), s)
	}
	entry := func(k, v *string) []byte {
		var e []byte
		if k != nil {
			e = str(e, mapKeyField, *k)
		}
		if v != nil {
			e = str(e, mapValueField, *v)
		}
		return e
	}
	spec := func(b []byte, entries ...[]byte) []byte {
		var s []byte
		s = str(s, fieldNumber(&pcnodev1.TaskSpec{}, "name"), "n")
		for _, e := range entries {
			s = protowire.AppendBytes(tag(s, specLabelsField, protowire.BytesType), e)
		}
		return protowire.AppendBytes(tag(b, taskSpecField, protowire.BytesType), s)
	}
	p := func(s string) *string { return &s }
	marshalled, err := proto.Marshal(&pcnodev1.Task{
		Id: "x", State: pcnodev1.TaskState_TASK_STATE_FAILED, Message: "m",
		Spec: &pcnodev1.TaskSpec{Name: "n", Labels: map[string]string{"team": "a", "kind": "y", "empty": ""}},
	})
	if err != nil {
		t.Fatal(err)
	}
	encodings := map[string][]byte{
		"marshalled":           marshalled,
		"empty":                nil,
		"state twice":          state(state(nil, pcnodev1.TaskState_TASK_STATE_RUNNING), pcnodev1.TaskState_TASK_STATE_SUCCEEDED),
		"state after spec":     state(spec(nil, entry(p("team"), p("a"))), pcnodev1.TaskState_TASK_STATE_FAILED),
		"negative state":       state(nil, pcnodev1.TaskState(-3)),
		"state as bytes":       str(nil, taskStateField, "x"),
		"spec twice":           spec(spec(nil, entry(p("team"), p("a")), entry(p("kind"), p("x"))), entry(p("team"), p("b"))),
		"key twice":            spec(nil, entry(p("team"), p("b")), entry(p("team"), p("a"))),
		"entry without value":  spec(nil, entry(p("empty"), nil)),
		"entry without key":    spec(nil, entry(nil, p("a"))),
		"entry, value first":   spec(nil, append(str(nil, mapValueField, "a"), str(nil, mapKeyField, "team")...)),
		"entry, key twice":     spec(nil, append(entry(p("kind"), p("y")), str(nil, mapKeyField, "team")...)),
		"unknown fields":       str(state(spec(str(nil, 999, "zz"), entry(p("team"), p("a"))), pcnodev1.TaskState_TASK_STATE_QUEUED), 1000, "q"),
		"spec of another type": protowire.AppendVarint(tag(nil, taskSpecField, protowire.VarintType), 7),
	}
	queries := []listQuery{
		{},
		{states: []pcnodev1.TaskState{pcnodev1.TaskState_TASK_STATE_FAILED}},
		{states: []pcnodev1.TaskState{pcnodev1.TaskState_TASK_STATE_UNSPECIFIED}},
		{states: []pcnodev1.TaskState{-3, pcnodev1.TaskState_TASK_STATE_SUCCEEDED}},
		{labels: map[string]string{"team": "a"}},
		{labels: map[string]string{"team": "b"}},
		{labels: map[string]string{"": "a"}},
		{labels: map[string]string{"empty": ""}},
		{labels: map[string]string{"team": "a", "kind": "y"}},
		{labels: map[string]string{"owner": ""}},
		{states: []pcnodev1.TaskState{pcnodev1.TaskState_TASK_STATE_FAILED}, labels: map[string]string{"team": "a"}},
	}
	for name, v := range encodings {
		task := &pcnodev1.Task{}
		if err := proto.Unmarshal(v, task); err != nil {
			t.Fatalf("%s: the test's encoding does not decode: %v", name, err)
		}
		for _, q := range queries {
			t.Run(fmt.Sprintf("%s/%v/%v", name, q.states, q.labels), func(t *testing.T) {
				got, err := q.matchesEncoded(v)
				if want := q.matches(task); err != nil || got != want {
					t.Errorf("matchesEncoded(%x) = %v, %v; decoded task %v matches: %v", v, got, err, task, want)
				}
			})
		}
	}
	// Malformed: a decode fails, and so does matchesEncoded once it reads
	// that far; a query without filters checks the top-level fields only,
	// which catches a truncated record and a bad tag.
	truncated := marshalled[:len(marshalled)-1]
	badEntry := spec(nil, protowire.AppendVarint(tag(nil, mapKeyField, protowire.BytesType), 50))
	for name, v := range map[string][]byte{"truncated": truncated, "bad entry": badEntry, "bad tag": {0x80}} {
		if err := proto.Unmarshal(v, &pcnodev1.Task{}); err == nil {
			t.Fatalf("%s: the test's encoding decodes", name)
		}
		q := listQuery{states: []pcnodev1.TaskState{1}, labels: map[string]string{"team": "a"}}
		if ok, err := q.matchesEncoded(v); err == nil {
			t.Errorf("%s: matchesEncoded(%x) = %v, nil; want an error", name, v, ok)
		}
	}
	for name, v := range map[string][]byte{"truncated": truncated, "bad tag": {0x80}, "length past the end": protowire.AppendVarint(tag(nil, 3, protowire.BytesType), 9)} {
		if ok, err := (&listQuery{}).matchesEncoded(v); err == nil {
			t.Errorf("%s, no filters: matchesEncoded(%x) = %v, nil; want an error", name, v, ok)
		}
	}
}
