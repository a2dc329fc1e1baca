package runtime

import (
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unreachable reports whether err says that containerd could not be
// reached: gRPC UNAVAILABLE (what a refused, reset or closed connection and
// a broken Wait stream and a missing socket all become in gRPC, also after
// containerd's client turned it into errdefs.ErrUnavailable). Dial errors
// are not looked at on their own: a registry's refused connection in a pull
// is no sign of containerd being down.
func unreachable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errdefs.IsUnavailable(err) {
		return true
	}
	if s, ok := status.FromError(err); ok && s.Code() == codes.Unavailable {
		return true
	}
	// Some of containerd's client code formats a status with %v, losing
	// the chain (content writers, unpack); its text still says which code.
	return strings.Contains(err.Error(), "code = Unavailable desc =")
}

// markUnavailable, deferred by every method that talks to containerd,
// makes an error of containerd being unreachable also ErrUnavailable,
// naming containerd's address and keeping the cause.
func (c *Containerd) markUnavailable(errp *error) {
	if err := *errp; err != nil && !errors.Is(err, ErrUnavailable) && unreachable(err) {
		*errp = fmt.Errorf("%w at %s: %w", ErrUnavailable, c.cfg.Address, err)
	}
}
