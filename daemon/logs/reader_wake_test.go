package logs

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestReadFollowWake: a follower whose Wake is closed looks again every
// WakePollInterval, and finds the end marker written after the wake
// within milliseconds instead of a poll interval (here an hour) later.
func TestReadFollowWake(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	wake := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Read(context.Background(), dir, ReadOptions{Follow: true, PollInterval: time.Hour, Wake: wake}, func([]Entry) error { return nil })
	}()
	time.Sleep(20 * time.Millisecond) // the follower is waiting on its poll
	close(wake)
	time.Sleep(50 * time.Millisecond) // the follower has looked, and looks again every WakePollInterval
	sealed := time.Now()
	if err := Seal(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Read = %v, want nil at the end marker", err)
		}
		t.Logf("end marker seen %v after it was written", time.Since(sealed))
	case <-time.After(10 * time.Second):
		t.Fatal("Read still following 10s after the log was sealed, Wake closed before")
	}
}
