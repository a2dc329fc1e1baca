package runtime

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
)

// TestIntegrationWaitAcrossContainerdRestart runs a container on a
// containerd of the test's own, which is stopped (SIGTERM) or killed while
// Wait waits: Wait and every other call fail with ErrUnavailable naming
// the address, the container exits meanwhile, and once containerd is back
// (it re-attaches its shims) a new Wait returns the container's real exit
// status, through the same client.
func TestIntegrationWaitAcrossContainerdRestart(t *testing.T) {
	for _, kill := range []bool{false, true} {
		name := "stop"
		if kill {
			name = "kill"
		}
		t.Run(name, func(t *testing.T) {
			proc := daemontest.StartContainerd(t)
			c, err := New(t.Context(), Config{Address: proc.Address, Namespace: testNamespace}, nil)
			if err != nil {
				t.Fatalf("New = %v", err)
			}
			t.Cleanup(func() { c.Close() })
			importImage(t, c, testimage.Image{Name: "pcnode.test/rt-restart:1"}, testimage.FormatOCI)
			id := newID(t, c)
			uri, err := FileLogURI(filepath.Join(t.TempDir(), "task.log"))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			if _, err := c.Start(ctx, ContainerSpec{ID: id, Image: "pcnode.test/rt-restart:1", LogURI: uri,
				Args: []string{"/pctest", "sleep", "1.5s", "--", "exit", "5"}}); err != nil {
				t.Fatalf("Start = %v", err)
			}
			waited := make(chan error, 1)
			go func() { _, err := c.Wait(ctx, id); waited <- err }()
			time.Sleep(200 * time.Millisecond) // Wait is on its way
			if kill {
				proc.Kill(t)
			} else {
				proc.Stop(t)
			}
			select {
			case err := <-waited:
				if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), proc.Address) {
					t.Fatalf("Wait with containerd gone = %v, want ErrUnavailable naming %s", err, proc.Address)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Wait did not return within 20 s of containerd going away")
			}
			if _, err := c.Usage(ctx, id); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Usage with containerd gone = %v, want ErrUnavailable", err)
			}
			if _, err := c.ListContainers(ctx); !errors.Is(err, ErrUnavailable) {
				t.Errorf("ListContainers with containerd gone = %v, want ErrUnavailable", err)
			}
			time.Sleep(2 * time.Second) // the container exits while containerd is down
			proc.Start(t)
			deadline := time.Now().Add(10 * time.Second)
			for {
				st, err := c.Wait(ctx, id)
				if err == nil {
					if st.Code != 5 || st.ExitedAt.IsZero() {
						t.Errorf("Wait after the restart = %+v, want exit 5 with its time", st)
					}
					break
				}
				// The client may not have reconnected yet (backoff ≤ 2 s).
				if !errors.Is(err, ErrUnavailable) || time.Now().After(deadline) {
					t.Fatalf("Wait after the restart = %v, want exit 5", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
