package runtime

import (
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestDigestCache(t *testing.T) {
	var c digestCache[imagePrep]
	d := digest.FromString("image")
	if _, ok := c.get(d); ok {
		t.Fatal("get on an empty cache found an entry")
	}
	want := imagePrep{config: ocispec.ImageConfig{Env: []string{"A=1"}, Cmd: []string{"/x"}}, chainID: digest.FromString("layers")}
	c.put(d, want)
	got, ok := c.get(d)
	if !ok || got.config.Env[0] != "A=1" || got.config.Cmd[0] != "/x" || got.chainID != want.chainID {
		t.Errorf("get(%s) = %+v, %v; want %+v", d, got, ok, want)
	}
	for i := range maxDigestCache + 1 { // bounded: past the limit it starts afresh
		c.put(digest.FromString(string(rune(i))), imagePrep{})
	}
	if n := len(c.m); n > maxDigestCache {
		t.Errorf("cache holds %d entries, want at most %d", n, maxDigestCache)
	}
}

func TestSpecReadsRootFS(t *testing.T) {
	for _, tc := range []struct {
		user, imgUser string
		want          bool
	}{
		{"", "", false},
		{"1000:1000", "", false},
		{"0:0", "root", false}, // the task's user wins
		{"", "1000:100", false},
		{"1000", "", true},  // the gid comes from /etc/passwd
		{"alice", "", true}, // a name
		{"1000:staff", "", true},
		{"alice:100", "", true},
		{"", "nobody", true},
		{":100", "", true}, // not a uid: oci.WithUser looks it up
		{"1000:", "", true},
		{"+1:2", "", true},
	} {
		got := specReadsRootFS(&ContainerSpec{User: tc.user}, ocispec.ImageConfig{User: tc.imgUser})
		if got != tc.want {
			t.Errorf("specReadsRootFS(user %q, image user %q) = %v, want %v", tc.user, tc.imgUser, got, tc.want)
		}
	}
}
