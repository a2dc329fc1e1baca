package main

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// sdNotifier sends systemd service notifications (sd_notify(3)): datagrams
// such as "READY=1" to the unix socket systemd names in $NOTIFY_SOCKET, a
// path or, starting with '@', an abstract socket name. Without
// NOTIFY_SOCKET (not started by systemd with Type=notify) it sends nothing.
type sdNotifier struct {
	addr *net.UnixAddr // nil: no socket, notify does nothing
}

// notifyWriteTimeout bounds one notification: systemd reads them at once;
// a socket nobody reads must not hold the daemon up.
const notifyWriteTimeout = time.Second

// newSDNotifier reads NOTIFY_SOCKET from getenv. A value that is neither an
// absolute path nor an abstract name is an error (and no notifier).
func newSDNotifier(getenv func(string) string) (*sdNotifier, error) {
	v := getenv("NOTIFY_SOCKET")
	switch {
	case v == "":
		return &sdNotifier{}, nil
	case len(v) > 107: // sun_path is 108 bytes with its terminator
		return &sdNotifier{}, fmt.Errorf("NOTIFY_SOCKET is %d bytes, longer than a unix socket address", len(v))
	case v[0] == '@' || v[0] == '/':
		// Go's net package turns a leading '@' into the abstract
		// namespace's NUL byte.
		return &sdNotifier{addr: &net.UnixAddr{Name: v, Net: "unixgram"}}, nil
	}
	return &sdNotifier{}, fmt.Errorf("NOTIFY_SOCKET %q is neither an absolute path nor an abstract socket name (@...)", v)
}

// enabled reports whether notifications go anywhere.
func (n *sdNotifier) enabled() bool { return n != nil && n.addr != nil }

// notify sends one notification of newline-separated assignments
// ("READY=1", "STATUS=...").
func (n *sdNotifier) notify(lines ...string) error {
	if !n.enabled() {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify to %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(notifyWriteTimeout)); err != nil {
		return err
	}
	if _, err := c.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		return fmt.Errorf("sd_notify to %s: %w", n.addr.Name, err)
	}
	return nil
}

// status is a STATUS= line of s on one line.
func sdStatus(s string) string {
	return "STATUS=" + strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}
