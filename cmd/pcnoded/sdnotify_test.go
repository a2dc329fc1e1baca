package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listenNotify listens on a unixgram socket at name (a path, or @abstract)
// and returns it.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("ListenUnixgram(%q): %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("reading a notification: %v", err)
	}
	return string(buf[:n])
}

func TestSDNotify(t *testing.T) {
	dir, err := os.MkdirTemp("", "sdn") // short: sun_path is 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for name, addr := range map[string]string{
		"path":     filepath.Join(dir, "notify.sock"),
		"abstract": fmt.Sprintf("@pcnode-test-%d-%d", os.Getpid(), time.Now().UnixNano()),
	} {
		t.Run(name, func(t *testing.T) {
			c := listenNotify(t, addr)
			n, err := newSDNotifier(func(k string) string {
				if k == "NOTIFY_SOCKET" {
					return addr
				}
				return ""
			})
			if err != nil || !n.enabled() {
				t.Fatalf("newSDNotifier(%q) = %v, enabled %v", addr, err, n.enabled())
			}
			if err := n.notify("READY=1", sdStatus("waiting for containerd\nat /run/x")); err != nil {
				t.Fatal(err)
			}
			if got, want := readNotify(t, c), "READY=1\nSTATUS=waiting for containerd at /run/x\n"; got != want {
				t.Errorf("notification = %q, want %q", got, want)
			}
			if err := n.notify("STOPPING=1"); err != nil {
				t.Fatal(err)
			}
			if got := readNotify(t, c); got != "STOPPING=1\n" {
				t.Errorf("notification = %q, want STOPPING=1", got)
			}
		})
	}
}

func TestSDNotifyUnsetOrBad(t *testing.T) {
	n, err := newSDNotifier(func(string) string { return "" })
	if err != nil || n.enabled() {
		t.Fatalf("without NOTIFY_SOCKET: %v, enabled %v; want a notifier that sends nothing", err, n.enabled())
	}
	if err := n.notify("READY=1"); err != nil {
		t.Errorf("notify without a socket = %v, want nil", err)
	}
	for _, v := range []string{"relative/sock", strings.Repeat("/x", 60)} {
		n, err := newSDNotifier(func(string) string { return v })
		if err == nil || n.enabled() {
			t.Errorf("newSDNotifier(%q) = %v, enabled %v; want an error and nothing sent", v, err, n.enabled())
		}
	}
	// A socket nobody listens on: an error, not a hang.
	gone := filepath.Join(t.TempDir(), "gone.sock")
	n, _ = newSDNotifier(func(string) string { return gone })
	if err := n.notify("READY=1"); err == nil {
		t.Errorf("notify to a missing socket = nil, want an error")
	}
}
