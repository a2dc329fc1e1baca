package daemon

import (
	"errors"
	"testing"
)

func TestPCCache(t *testing.T) {
	var c pcCache // the zero value is ready
	if got, ok := c.get("sha256:a"); ok || got != nil {
		t.Errorf("get(sha256:a) of an empty cache = %v, %v, want nil, false", got, ok)
	}
	a := &cachedPC{err: errors.New("no file")}
	c.put("sha256:a", a)
	if got, ok := c.get("sha256:a"); !ok || got != a {
		t.Errorf("get(sha256:a) = %v, %v, want %v, true", got, ok, a)
	}
	if _, ok := c.get("sha256:b"); ok {
		t.Error("get(sha256:b) found an entry never put")
	}
}
