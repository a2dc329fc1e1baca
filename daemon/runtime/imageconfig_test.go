package runtime

import (
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestImageConfigs(t *testing.T) {
	var c imageConfigs
	d := digest.FromString("image")
	if _, ok := c.get(d); ok {
		t.Fatal("get on an empty cache found an entry")
	}
	want := ocispec.ImageConfig{Env: []string{"A=1"}, Cmd: []string{"/x"}}
	c.put(d, want)
	got, ok := c.get(d)
	if !ok || got.Env[0] != "A=1" || got.Cmd[0] != "/x" {
		t.Errorf("get(%s) = %+v, %v; want %+v", d, got, ok, want)
	}
	for i := range maxImageConfigs + 1 { // bounded: past the limit it starts afresh
		c.put(digest.FromString(string(rune(i))), ocispec.ImageConfig{})
	}
	if n := len(c.m); n > maxImageConfigs {
		t.Errorf("cache holds %d entries, want at most %d", n, maxImageConfigs)
	}
}
