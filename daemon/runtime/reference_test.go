package runtime

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeRef(t *testing.T) {
	const dgst = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	tests := []struct {
		in, want string
	}{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox:latest"},
		{"docker.io/busybox", "docker.io/library/busybox:latest"},
		{"kaapana/dummy:0.1", "docker.io/kaapana/dummy:0.1"},
		{"registry.example.com:5000/pc/dummy", "registry.example.com:5000/pc/dummy:latest"},
		{"127.0.0.1:5000/pc/dummy:v1", "127.0.0.1:5000/pc/dummy:v1"},
		{"localhost/dummy", "localhost/dummy:latest"},
		{"pcnode.test/pctest:latest", "pcnode.test/pctest:latest"},
		{"busybox@" + dgst, "docker.io/library/busybox@" + dgst},
		{"busybox:1@" + dgst, "docker.io/library/busybox@" + dgst},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeRef(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeRef(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
			}
			again, err := NormalizeRef(got)
			if err != nil || again != got {
				t.Fatalf("NormalizeRef(%q) = %q, %v, want it unchanged", got, again, err)
			}
		})
	}
}

func TestNormalizeRefInvalid(t *testing.T) {
	for _, in := range []string{
		"",
		"Busybox",
		"busybox:",
		"busybox@sha256:short",
		" busybox",
		"busybox\n",
		"a b",
		"http://registry/x",
		"user:pass@registry.example.com/x",
		"registry.example.com/x:" + strings.Repeat("t", 129),
		strings.Repeat("a", 600),
		"../x",
	} {
		t.Run(in, func(t *testing.T) {
			got, err := NormalizeRef(in)
			if !errors.Is(err, ErrInvalidReference) {
				t.Fatalf("NormalizeRef(%q) = %q, %v, want ErrInvalidReference", in, got, err)
			}
		})
	}
}

func TestRefHost(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/library/busybox:latest": "docker.io",
		"127.0.0.1:5000/pc/dummy:v1":       "127.0.0.1:5000",
		"localhost/dummy:latest":           "localhost",
	} {
		if got, err := refHost(in); err != nil || got != want {
			t.Errorf("refHost(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
}

func FuzzNormalizeRef(f *testing.F) {
	for _, s := range []string{"busybox", "a/b:c", "x@sha256:" + strings.Repeat("0", 64), "Bad", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NormalizeRef(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidReference) {
				t.Fatalf("NormalizeRef(%q) = %v, want ErrInvalidReference", in, err)
			}
			return
		}
		again, err := NormalizeRef(got)
		if err != nil || again != got {
			t.Fatalf("NormalizeRef(NormalizeRef(%q)) = %q, %v, want %q", in, again, err, got)
		}
	})
}
