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

// encodedLabels is what matchesEncoded keeps of the labels a query asks
// for while it reads one record, reused from record to record: made once
// per query, so a page allocates nothing per task for its filters.
type encodedLabels struct {
	keys []string // the labels asked for, sorted
	vals [][]byte // of the record being read: the last value of keys[i] (in the record)
	seen []bool   // whether the record has keys[i]
}

// matchesEncoded is matches on v, the encoding of a task: it reads only the
// state and the labels, and only when the query filters on them; without
// filters it checks that v's top-level fields are well formed (a truncated
// or overwritten record), so that a damaged record is refused here, named,
// rather than sent for the client to fail on. A malformed encoding is an
// error.
func (q *listQuery) matchesEncoded(v []byte) (bool, error) {
	if q.states == nil && len(q.labels) == 0 {
		return true, wellFormed(v)
	}
	l := q.encLabels
	if l == nil && len(q.labels) > 0 {
		keys := sortedLabels(q.labels)
		l = &encodedLabels{keys: keys, vals: make([][]byte, len(keys)), seen: make([]bool, len(keys))}
		q.encLabels = l
	}
	if l != nil {
		clear(l.vals)
		clear(l.seen)
	}
	var state pcnodev1.TaskState
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
		case num == taskSpecField && typ == protowire.BytesType && l != nil:
			spec, n := protowire.ConsumeBytes(v)
			if n < 0 {
				return false, protowire.ParseError(n)
			}
			if err := l.read(spec); err != nil {
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
	if l != nil {
		for i, k := range l.keys {
			if !l.seen[i] || string(l.vals[i]) != q.labels[k] {
				return false, nil
			}
		}
	}
	return true, nil
}

// read records the labels of the encoded spec that are asked for (a later
// entry of a key replaces an earlier one, as decoding does).
func (l *encodedLabels) read(spec []byte) error {
	for len(spec) > 0 {
		num, typ, n := protowire.ConsumeTag(spec)
		if n < 0 {
			return protowire.ParseError(n)
		}
		spec = spec[n:]
		if num != specLabelsField || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, spec); n < 0 {
				return protowire.ParseError(n)
			}
			spec = spec[n:]
			continue
		}
		entry, n := protowire.ConsumeBytes(spec)
		if n < 0 {
			return protowire.ParseError(n)
		}
		spec = spec[n:]
		k, v, err := mapEntry(entry)
		if err != nil {
			return err
		}
		if i, ok := slices.BinarySearch(l.keys, string(k)); ok {
			l.vals[i], l.seen[i] = v, true
		}
	}
	return nil
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

// wellFormed checks that v is a sequence of well-formed protobuf fields
// (tags, lengths and varints that fit in v). Nested messages are not
// walked.
func wellFormed(v []byte) error {
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return protowire.ParseError(n)
		}
		v = v[n:]
		if n = protowire.ConsumeFieldValue(num, typ, v); n < 0 {
			return protowire.ParseError(n)
		}
		v = v[n:]
	}
	return nil
}
