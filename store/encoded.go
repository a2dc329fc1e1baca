package store

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Reading a stored task's filters from its encoding (ListTasksEncoded):
// the state and the spec's labels, with proto's rules for what a decode
// would make of them (the last value of a field wins; a field of another
// wire type than its own is an unknown field; a map entry without key or
// value has ""), and nothing else of the record.

// Field numbers read from a stored Task, taken from the descriptors.
var (
	taskStateField  = fieldNumber(&pcnodev1.Task{}, "state")
	taskSpecField   = fieldNumber(&pcnodev1.Task{}, "spec")
	specLabelsField = fieldNumber(&pcnodev1.TaskSpec{}, "labels")
)

// The fields of a map entry (protobuf's map encoding).
const (
	mapKeyField   protowire.Number = 1
	mapValueField protowire.Number = 2
)

func fieldNumber(m proto.Message, name protoreflect.Name) protowire.Number {
	f := m.ProtoReflect().Descriptor().Fields().ByName(name)
	if f == nil {
		panic(fmt.Sprintf("store: %s has no field %s", m.ProtoReflect().Descriptor().FullName(), name))
	}
	return f.Number()
}

// matchesEncoded is matches on v, the encoding of a task: it reads only the
// state and the labels, and only when the query filters on them. A
// malformed encoding is an error.
func (q *listQuery) matchesEncoded(v []byte) (bool, error) {
	if q.states == nil && len(q.labels) == 0 {
		return true, nil
	}
	var (
		state pcnodev1.TaskState
		found map[string]string // of the labels q asks for, the values v has
	)
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return false, protowire.ParseError(n)
		}
		v = v[n:]
		switch {
		case num == taskStateField && typ == protowire.VarintType:
			x, n := protowire.ConsumeVarint(v)
			if n < 0 {
				return false, protowire.ParseError(n)
			}
			state = pcnodev1.TaskState(int32(x))
			v = v[n:]
			continue
		case num == taskSpecField && typ == protowire.BytesType && len(q.labels) > 0:
			spec, n := protowire.ConsumeBytes(v)
			if n < 0 {
				return false, protowire.ParseError(n)
			}
			var err error
			if found, err = q.specLabels(spec, found); err != nil {
				return false, err
			}
			v = v[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, v)
		if n < 0 {
			return false, protowire.ParseError(n)
		}
		v = v[n:]
	}
	if q.states != nil {
		if _, ok := slices.BinarySearch(q.states, state); !ok {
			return false, nil
		}
	}
	for k, want := range q.labels {
		if got, ok := found[k]; !ok || got != want {
			return false, nil
		}
	}
	return true, nil
}

// specLabels adds to found the labels of the encoded spec that q asks for
// (a later entry of a key replaces an earlier one, as decoding does) and
// returns it, made when first needed.
func (q *listQuery) specLabels(spec []byte, found map[string]string) (map[string]string, error) {
	for len(spec) > 0 {
		num, typ, n := protowire.ConsumeTag(spec)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		spec = spec[n:]
		if num != specLabelsField || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, spec); n < 0 {
				return nil, protowire.ParseError(n)
			}
			spec = spec[n:]
			continue
		}
		entry, n := protowire.ConsumeBytes(spec)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		spec = spec[n:]
		k, v, err := mapEntry(entry)
		if err != nil {
			return nil, err
		}
		if _, asked := q.labels[string(k)]; !asked {
			continue
		}
		if found == nil {
			found = make(map[string]string, len(q.labels))
		}
		found[string(k)] = string(v)
	}
	return found, nil
}

// mapEntry returns the key and value of an encoded map<string, string>
// entry.
func mapEntry(b []byte) (k, v []byte, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, protowire.ParseError(n)
		}
		b = b[n:]
		if (num == mapKeyField || num == mapValueField) && typ == protowire.BytesType {
			s, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, nil, protowire.ParseError(n)
			}
			if num == mapKeyField {
				k = s
			} else {
				v = s
			}
			b = b[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return nil, nil, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return k, v, nil
}
