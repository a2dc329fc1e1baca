package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// jkind is the kind of a JSON value.
type jkind int

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

func (k jkind) String() string {
	switch k {
	case jNull:
		return "null"
	case jBool:
		return "a boolean"
	case jNumber:
		return "a number"
	case jString:
		return "a string"
	case jArray:
		return "an array"
	default:
		return "an object"
	}
}

// jvalue is a decoded JSON value that keeps object members in order and
// remembers duplicate keys, which encoding/json's map decoding loses.
type jvalue struct {
	kind jkind
	b    bool
	s    string // string value or number text
	arr  []*jvalue
	obj  []jmember
	dups []string // keys that appeared more than once (objects only)
}

type jmember struct {
	key string
	val *jvalue
}

// get returns the member with the given key (the last one when duplicated).
func (v *jvalue) get(key string) (*jvalue, bool) {
	for i := len(v.obj) - 1; i >= 0; i-- {
		if v.obj[i].key == key {
			return v.obj[i].val, true
		}
	}
	return nil, false
}

// decodeJSON reads exactly one JSON value from data.
func decodeJSON(data []byte) (*jvalue, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(data), MaxFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, syntaxError(err, dec)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the top-level value")
		}
		return nil, syntaxError(err, dec)
	}
	return v, nil
}

func syntaxError(err error, dec *json.Decoder) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: unexpected end of input", ErrSyntax)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: %s (offset %d)", ErrSyntax, se.Error(), se.Offset)
	}
	return fmt.Errorf("%w: %s (offset %d)", ErrSyntax, err.Error(), dec.InputOffset())
}

// maxDepth bounds the nesting of arrays and objects; the formats need 6.
const maxDepth = 64

func decodeValue(dec *json.Decoder, depth int) (*jvalue, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return &jvalue{kind: jNull}, nil
	case bool:
		return &jvalue{kind: jBool, b: t}, nil
	case json.Number:
		return &jvalue{kind: jNumber, s: t.String()}, nil
	case string:
		return &jvalue{kind: jString, s: t}, nil
	case json.Delim:
		switch t {
		case '[':
			v := &jvalue{kind: jArray, arr: []*jvalue{}}
			for dec.More() {
				e, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.arr = append(v.arr, e)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return v, nil
		case '{':
			v := &jvalue{kind: jObject, obj: []jmember{}}
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is not a string")
				}
				e, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				if seen[key] {
					v.dups = append(v.dups, key)
				}
				seen[key] = true
				v.obj = append(v.obj, jmember{key: key, val: e})
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return v, nil
		}
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// Field paths. They use the file's own names: "a.b[2].c", with object keys
// that are not plain words quoted: `limits["nvidia.com/gpu"]`.

func joinField(path, name string) string {
	if !plainKey(name) {
		return path + "[" + strconv.Quote(name) + "]"
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

func indexField(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
