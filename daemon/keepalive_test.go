package daemon

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/pcnode/pcnode/client"
)

// TestKeepaliveAcceptsClientPings: the daemon's keepalive policy lets the Go
// client ping at its default rate, with or without an open call, so that a
// scheduler's idle watch is never closed with "too_many_pings"; it still
// names a floor (gRPC replaces a zero MinTime with its 5-minute default),
// and its own pings notice a vanished peer without closing connections for
// their age or idleness.
func TestKeepaliveAcceptsClientPings(t *testing.T) {
	p := keepalivePolicy
	if p.MinTime <= 0 || p.MinTime > client.DefaultKeepaliveTime {
		t.Errorf("keepalivePolicy.MinTime = %v, want in (0, client.DefaultKeepaliveTime = %v]", p.MinTime, client.DefaultKeepaliveTime)
	}
	if p.MinTime < 5*time.Second {
		t.Errorf("keepalivePolicy.MinTime = %v, want at least 5s: a client pinging faster is flooding", p.MinTime)
	}
	if !p.PermitWithoutStream {
		t.Errorf("keepalivePolicy.PermitWithoutStream = false, want true: a scheduler's connection between calls may ping")
	}

	s := keepaliveParams
	if s.Time < p.MinTime || s.Time > 5*time.Minute {
		t.Errorf("keepaliveParams.Time = %v, want between the clients' floor %v and 5m", s.Time, p.MinTime)
	}
	if s.Timeout <= 0 || s.Timeout > s.Time {
		t.Errorf("keepaliveParams.Timeout = %v, want in (0, Time = %v]", s.Timeout, s.Time)
	}
	if s.MaxConnectionIdle != 0 || s.MaxConnectionAge != 0 {
		t.Errorf("keepaliveParams closes connections when idle (%v) or old (%v); want neither (0: never)", s.MaxConnectionIdle, s.MaxConnectionAge)
	}
}

// h2Frame is one HTTP/2 frame header and payload as read off the wire.
type h2Frame struct {
	typ, flags byte
	payload    []byte
}

// HTTP/2 frame types and flags the ping test speaks (RFC 9113, section 6).
const (
	h2Settings = 0x4
	h2Ping     = 0x6
	h2GoAway   = 0x7
	h2Ack      = 0x1
)

// rawH2 is a bare HTTP/2 client connection: it writes the preface and
// frames by hand, so the test decides exactly when pings are sent (a gRPC
// client refuses to ping more often than every 10 s).
type rawH2 struct {
	mu     sync.Mutex // serialises writes
	conn   net.Conn
	frames chan h2Frame
}

func dialRawH2(t *testing.T, network, addr string) *rawH2 {
	t.Helper()
	conn, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawH2{conn: conn, frames: make(chan h2Frame, 64)}
	if _, err := io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.write(t, h2Settings, 0, nil)
	go func() {
		defer close(c.frames)
		for {
			var hdr [9]byte
			if _, err := io.ReadFull(conn, hdr[:]); err != nil {
				return
			}
			f := h2Frame{typ: hdr[3], flags: hdr[4], payload: make([]byte, int(hdr[0])<<16|int(hdr[1])<<8|int(hdr[2]))}
			if _, err := io.ReadFull(conn, f.payload); err != nil {
				return
			}
			if f.typ == h2Settings && f.flags&h2Ack == 0 {
				c.write(nil, h2Settings, h2Ack, nil)
			}
			c.frames <- f
		}
	}()
	return c
}

// write sends one frame on stream 0; t nil: errors are ignored (the
// reader's settings acks).
func (c *rawH2) write(t *testing.T, typ, flags byte, payload []byte) {
	n := len(payload)
	b := append([]byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, 0, 0, 0, 0}, payload...)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.conn.Write(b); err != nil && t != nil {
		t.Fatalf("writing frame type %d: %v", typ, err)
	}
}

func (c *rawH2) ping(t *testing.T, n byte) {
	t.Helper()
	c.write(t, h2Ping, 0, []byte{n, 0, 0, 0, 0, 0, 0, 0})
}

// next returns the next ping ack or GOAWAY within wait (ok false: none).
func (c *rawH2) next(t *testing.T, wait time.Duration) (h2Frame, bool) {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case f, open := <-c.frames:
			if !open {
				t.Fatalf("connection closed without a GOAWAY")
			}
			if (f.typ == h2Ping && f.flags&h2Ack != 0) || f.typ == h2GoAway {
				return f, true
			}
		case <-timer.C:
			return h2Frame{}, false
		}
	}
}

// wantAck fails t unless the next frame is the ack of ping n.
func (c *rawH2) wantAck(t *testing.T, n byte) {
	t.Helper()
	f, ok := c.next(t, 5*time.Second)
	switch {
	case !ok:
		t.Fatalf("no answer to ping %d within 5s", n)
	case f.typ == h2GoAway:
		t.Fatalf("ping %d answered with GOAWAY %q, want an ack", n, goAwayDebug(f))
	case f.payload[0] != n:
		t.Fatalf("ack of ping %d, want of ping %d", f.payload[0], n)
	}
}

func goAwayDebug(f h2Frame) string {
	if len(f.payload) < 8 {
		return ""
	}
	return string(f.payload[8:])
}

// TestServerOptionsKeepalive speaks raw HTTP/2 to a gRPC server built with
// ServerOptions, with no call open. gRPC counts a ping that comes sooner
// than the policy allows as a strike and closes the connection with GOAWAY
// "too_many_pings" at the third: two quick pings make two strikes, then a
// ping keepalivePolicy.MinTime (10 s) after the last is acked and the
// connection stays (gRPC's default policy, 5 minutes and no pings without a
// call, would close it there), and a quick one after it is the third
// strike. So a client pinging every 10 s or slower, such as the Go client
// every 30 s, keeps an idle connection, and a ping flood is still cut off.
func TestServerOptionsKeepalive(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "pcka-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "api.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer((&Daemon{}).ServerOptions()...)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	c := dialRawH2(t, "unix", sock)
	c.ping(t, 1)
	c.wantAck(t, 1)
	c.ping(t, 2) // strike 1
	c.wantAck(t, 2)
	c.ping(t, 3) // strike 2
	c.wantAck(t, 3)
	time.Sleep(keepalivePolicy.MinTime + 250*time.Millisecond)
	c.ping(t, 4) // allowed: no strike
	c.wantAck(t, 4)
	if f, ok := c.next(t, time.Second); ok {
		t.Fatalf("after a ping %v after the last: frame type %d %q, want the connection kept", keepalivePolicy.MinTime, f.typ, goAwayDebug(f))
	}
	c.ping(t, 5) // strike 3
	for {
		f, ok := c.next(t, 5*time.Second)
		if !ok {
			t.Fatalf("a third quick ping got no GOAWAY within 5s, want too_many_pings")
		}
		if f.typ == h2GoAway {
			if got := goAwayDebug(f); got != "too_many_pings" {
				t.Errorf("GOAWAY %q, want too_many_pings", got)
			}
			return
		}
	}
}
