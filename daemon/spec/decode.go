package spec

import (
	"errors"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// reader turns a decoded JSON tree into this package's types, collecting a
// problem for every value of the wrong JSON type and a warning for every key
// it does not use.
type reader struct {
	collector
	// substitute applies `{{ env.NAME }}` substitution to the strings read
	// with text (task.json only); lookup nil keeps placeholders.
	substitute   bool
	lookup       LookupEnv
	placeholders []Placeholder
}

// object returns the non-null members of v that are in known, after warning
// about unknown and duplicate keys and reporting missing required ones. ok
// is false (and a problem recorded) when v is not an object.
func (r *reader) object(v *jvalue, path string, known, required []string) (map[string]*jvalue, bool) {
	if v.kind != jObject {
		r.problem(path, "must be an object, not %s", v.kind)
		return nil, false
	}
	for _, k := range v.dups {
		r.warn(joinField(path, k), "duplicate key; the last one is used")
	}
	m := make(map[string]*jvalue, len(v.obj))
	var unknown []string
	for _, mem := range v.obj {
		switch {
		case slices.Contains(known, mem.key):
			m[mem.key] = mem.val // the last duplicate wins, as in Python's json
		case !slices.Contains(unknown, mem.key):
			unknown = append(unknown, mem.key)
			r.warn(joinField(path, mem.key), "unknown field; ignored")
		}
	}
	for _, k := range required {
		if val, ok := m[k]; !ok {
			r.problem(joinField(path, k), "required")
		} else if val.kind == jNull {
			r.problem(joinField(path, k), "required; must not be null")
		}
	}
	for k, val := range m {
		if val.kind == jNull {
			delete(m, k)
		}
	}
	return m, true
}

// str reads a string as it is.
func (r *reader) str(v *jvalue, path string) string {
	if v == nil {
		return ""
	}
	if v.kind != jString {
		r.problem(path, "must be a string, not %s", v.kind)
		return ""
	}
	return v.s
}

// text reads a string and, in a task, substitutes its placeholders.
func (r *reader) text(v *jvalue, path string) string {
	s := r.str(v, path)
	if !r.substitute || s == "" {
		return s
	}
	out, vars, missing, err := substitute(s, r.lookup)
	if err != nil {
		r.problem(path, "%s", err)
		return s
	}
	for _, name := range missing {
		r.problem(path, "environment variable %q is not set (used as {{ env.%s }})", name, name)
	}
	if r.lookup == nil {
		for _, name := range vars {
			r.placeholders = append(r.placeholders, Placeholder{Field: path, Variable: name})
		}
	}
	return out
}

// placeholderAt reports whether text left a placeholder in the field.
func (r *reader) placeholderAt(field string) bool {
	return slices.ContainsFunc(r.placeholders, func(p Placeholder) bool { return p.Field == field })
}

// texts reads an array of strings with text.
func (r *reader) texts(v *jvalue, path string) []string {
	if v == nil {
		return nil
	}
	if v.kind != jArray {
		r.problem(path, "must be an array of strings, not %s", v.kind)
		return nil
	}
	out := make([]string, 0, len(v.arr))
	for i, e := range v.arr {
		out = append(out, r.text(e, indexField(path, i)))
	}
	return out
}

// array checks that v is an array and returns its elements.
func (r *reader) array(v *jvalue, path string) []*jvalue {
	if v == nil {
		return nil
	}
	if v.kind != jArray {
		r.problem(path, "must be an array, not %s", v.kind)
		return nil
	}
	return v.arr
}

// boolean reads a JSON boolean.
func (r *reader) boolean(v *jvalue, path string) (bool, bool) {
	if v.kind != jBool {
		r.problem(path, "must be true or false, not %s", v.kind)
		return false, false
	}
	return v.b, true
}

// integer reads a JSON number with no fractional part (25, 25.0, 2.5e1).
func (r *reader) integer(v *jvalue, path string) (int64, bool) {
	if v.kind != jNumber {
		r.problem(path, "must be an integer, not %s", v.kind)
		return 0, false
	}
	n, err := jsonInteger(v.s)
	if err != nil {
		r.problem(path, "must be an integer: %s", err)
		return 0, false
	}
	return n, true
}

var errNotInteger = errors.New("has a fractional part")

// jsonInteger converts JSON number text with an integral value to int64.
func jsonInteger(s string) (int64, error) {
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil {
			return 0, errors.New("bad exponent")
		}
		mant, exp = s[:i], e
	}
	var rat big.Rat
	if _, ok := rat.SetString(mant); !ok {
		return 0, errors.New("not a number")
	}
	if rat.Sign() == 0 {
		return 0, nil
	}
	// Keep big.Int from building 10^999999999: a non-zero int64 has at most
	// 19 digits, and dividing a non-zero mantissa by more powers of ten than it
	// has digits leaves a fraction.
	if exp > 40 {
		return 0, errors.New("out of range")
	}
	if exp < -len(mant) {
		return 0, errNotInteger
	}
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(exp))), nil)
	if exp > 0 {
		rat.Mul(&rat, new(big.Rat).SetInt(scale))
	} else if exp < 0 {
		rat.Quo(&rat, new(big.Rat).SetInt(scale))
	}
	if !rat.IsInt() {
		return 0, errNotInteger
	}
	if !rat.Num().IsInt64() {
		return 0, errors.New("out of range")
	}
	return rat.Num().Int64(), nil
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
