package runtime

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
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

func TestNewWithoutContainerd(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := New(ctx, Config{Address: filepath.Join(t.TempDir(), "none.sock")}, nil)
	if err == nil {
		t.Fatal("New(no containerd) = nil error")
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("New(no containerd) with a 300ms deadline took %v", d)
	}
}
