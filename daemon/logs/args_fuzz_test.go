package logs

import (
	"errors"
	"maps"
	"net/url"
	"testing"
)

// FuzzParseQuery checks the binary's own query parser against
// url.ParseQuery, which it replaces (to keep package fmt out of
// pcnode-logd): the same pairs where url accepts the query and no key
// repeats, an ErrInvalidConfig wherever url refuses it.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"dir=%2Fvar%2Flib%2Fpcnode&max-file-bytes=10485760&max-files=5",
		"dir=/a+b&&x=", "a;b=c", "%zz=1", "k=%", "=v", "k", "a=1&a=2", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		got := map[string]string{}
		err := parseQuery(q, got)
		want, werr := url.ParseQuery(q)
		if werr != nil {
			if err == nil {
				t.Fatalf("parseQuery(%q) = %v, nil; url.ParseQuery refuses it: %v", q, got, werr)
			}
			return
		}
		repeated := false
		for _, vs := range want {
			repeated = repeated || len(vs) > 1
		}
		if repeated {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("parseQuery(%q) = %v, %v; want ErrInvalidConfig for a repeated key", q, got, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("parseQuery(%q) = %v; url.ParseQuery gives %v", q, err, want)
		}
		flat := map[string]string{}
		for k, vs := range want {
			flat[k] = vs[0]
		}
		if !maps.Equal(got, flat) {
			t.Fatalf("parseQuery(%q) = %v, url.ParseQuery %v", q, got, flat)
		}
	})
}
