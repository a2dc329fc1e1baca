package logs

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestReadFollowWake: a follower whose Wake is closed looks at once, and
// finds the end marker written meanwhile, instead of a poll interval
// (here an hour) later.
func TestReadFollowWake(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	wake := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Read(context.Background(), dir, ReadOptions{Follow: true, PollInterval: time.Hour, Wake: wake}, func([]Entry) error { return nil })
	}()
	time.Sleep(20 * time.Millisecond) // the follower is waiting on its poll
	if err := Seal(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	close(wake)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Read = %v, want nil at the end marker", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read still following 10s after Wake was closed on a sealed log")
	}
}
