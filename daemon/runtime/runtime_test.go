package runtime

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestNewRejectsBadConfig(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for name, cfg := range map[string]Config{
		"namespace":         {Address: sock, Namespace: "bad/ns"},
		"insecure registry": {Address: sock, InsecureRegistries: []string{"http://registry"}},
		"registry key":      {Address: sock, Registries: map[string]Auth{"": {}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(t.Context(), cfg, nil); !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("New(%+v) = %v, want ErrInvalidArgument", cfg, err)
			}
		})
	}
}

// TestNewWithoutContainerd: New succeeds with no containerd at the
// address, and every call then fails fast with ErrUnavailable, naming the
// address.
func TestNewWithoutContainerd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	c, err := New(t.Context(), Config{Address: sock}, nil)
	if err != nil {
		t.Fatalf("New(no containerd) = %v, want a client that connects later", err)
	}
	defer c.Close()
	calls := map[string]func(ctx context.Context) error{
		"Version":        func(ctx context.Context) error { _, err := c.Version(ctx); return err },
		"Wait":           func(ctx context.Context) error { _, err := c.Wait(ctx, "x"); return err },
		"Usage":          func(ctx context.Context) error { _, err := c.Usage(ctx, "x"); return err },
		"Delete":         func(ctx context.Context) error { return c.Delete(ctx, "x") },
		"ListContainers": func(ctx context.Context) error { _, err := c.ListContainers(ctx); return err },
		"GetImage": func(ctx context.Context) error {
			_, err := c.GetImage(ctx, "docker.io/library/busybox:latest")
			return err
		},
		"ListImages": func(ctx context.Context) error { _, err := c.ListImages(ctx); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			begin := time.Now()
			err := call(ctx)
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("%s(no containerd) = %v, want ErrUnavailable", name, err)
			}
			if !strings.Contains(err.Error(), sock) {
				t.Errorf("%s(no containerd) = %q, want the address %s named", name, err, sock)
			}
			if d := time.Since(begin); d > 10*time.Second {
				t.Errorf("%s(no containerd) took %v, want it to fail fast", name, d)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"grpc unavailable", status.Error(codes.Unavailable, "connection error"), true},
		{"wrapped grpc unavailable", fmt.Errorf("wait for x: %w", status.Error(codes.Unavailable, "error reading from server: EOF")), true},
		{"errdefs unavailable", fmt.Errorf("x: %w", errdefs.ErrUnavailable), true},
		{"formatted status", fmt.Errorf("unpack: %v", status.Error(codes.Unavailable, "transport is closing")), true},
		{"not found", status.Error(codes.NotFound, "no such container"), false},
		{"errdefs not found", errdefs.ErrNotFound, false},
		{"canceled", status.Error(codes.Canceled, "context canceled"), false},
		{"plain", errors.New("boom"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := unreachable(tt.err); got != tt.want {
				t.Errorf("unreachable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
