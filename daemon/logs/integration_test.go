package logs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/pcnode/pcnode/internal/testimage"
	"github.com/pcnode/pcnode/internal/testimage/pattern"
)

// TestIntegrationBinaryIO runs a real container whose output goes through
// containerd's binary log URI to this test binary in binary mode, follows
// the log while the container writes 50 MB, and checks it byte-exact.
func TestIntegrationBinaryIO(t *testing.T) {
	ctx, c := testimage.Connect(t, "pcnode-logs-test")
	img := testimage.Load(ctx, t, c, testimage.Image{})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const (
		outBytes = 50_000_000
		errBytes = 10_000
	)
	dir := filepath.Join(t.TempDir(), "log")
	// 64-byte lines take 89 bytes on disk: 50 MB needs about 70 MB.
	cfg := DriverConfig{Dir: dir, MaxFileBytes: 32 << 20, MaxFiles: 4}

	id := "logs-binary-io"
	ctr, err := c.NewContainer(ctx, id,
		client.WithImage(img),
		client.WithNewSnapshot(id+"-snapshot", img),
		client.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs(
			"/pctest", "write-stdout", "50M", "--", "write-stderr", "10k", "--", "echo", "done")))
	if err != nil {
		t.Fatalf("NewContainer(%q) = %v", id, err)
	}
	defer func() {
		if err := ctr.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup); err != nil {
			t.Errorf("Delete container %q: %v", id, err)
		}
	}()
	task, err := ctr.NewTask(ctx, cio.BinaryIO(exe, BinaryIOArgs(cfg)))
	if err != nil {
		t.Fatalf("NewTask(%q) with binary log URI = %v", id, err)
	}
	// The shim returned from NewTask only after the driver signalled
	// readiness, so the log and its lock exist already.
	if !lockHeld(t, dir) {
		t.Errorf("log lock not held after NewTask")
	}
	exitCh, err := task.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait(%q) = %v", id, err)
	}

	type followed struct {
		out, err []byte
		hash     string
		entries  uint64
		err2     error
	}
	done := make(chan followed, 1)
	go func() {
		var f followed
		h := sha256.New()
		var last uint64
		f.err2 = Read(ctx, dir, ReadOptions{Follow: true, PollInterval: 10 * time.Millisecond}, func(b []Entry) error {
			for _, e := range b {
				if e.Seq != last+1 {
					t.Errorf("entry %d after %d", e.Seq, last)
				}
				last = e.Seq
				f.entries++
				if e.Stream == StreamStdout {
					h.Write(e.Data)
					if len(f.out) < 100 {
						f.out = append(f.out, e.Data...)
					}
				} else {
					f.err = append(f.err, e.Data...)
				}
			}
			return nil
		})
		f.hash = hex.EncodeToString(h.Sum(nil))
		done <- f
	}()

	if err := task.Start(ctx); err != nil {
		t.Fatalf("Start(%q) = %v", id, err)
	}
	select {
	case status := <-exitCh:
		if status.Error() != nil || status.ExitCode() != 0 {
			t.Fatalf("task %q exited %d, %v; want 0", id, status.ExitCode(), status.Error())
		}
	case <-time.After(60 * time.Second):
		task.Kill(ctx, syscall.SIGKILL)
		t.Fatalf("task %q did not exit within 60s", id)
	}
	// Deleting the task closes the pipes and stops the driver, which seals
	// the log: the follower ends without Seal.
	if _, err := task.Delete(ctx); err != nil {
		t.Errorf("Delete task %q: %v", id, err)
	}
	var f followed
	select {
	case f = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("follower did not finish after the task was deleted")
	}
	if f.err2 != nil {
		t.Fatalf("following Read = %v", f.err2)
	}
	wantOut := sha256.New()
	pattern.Write(wantOut, outBytes)
	wantOut.Write([]byte("done\n"))
	if want := hex.EncodeToString(wantOut.Sum(nil)); f.hash != want {
		t.Errorf("sha256 of stdout through the log = %s, want %s (pattern(%d) then \"done\\n\")", f.hash, want, outBytes)
	}
	if !bytes.Equal(f.err, pattern.Bytes(errBytes)) {
		t.Errorf("stderr through the log = %d bytes, want the first %d pattern bytes", len(f.err), errBytes)
	}
	if !bytes.Equal(f.out, pattern.Bytes(int64(len(f.out)))) {
		t.Errorf("stdout through the log starts %q, want the pattern", f.out)
	}
	info, err := Stat(dir)
	if err != nil || !info.Ended || info.LastSeq != f.entries {
		t.Errorf("Stat = %+v, %v; want ended at %d", info, err, f.entries)
	}
	if lockHeld(t, dir) {
		t.Errorf("log lock still held after the task was deleted")
	}
}
