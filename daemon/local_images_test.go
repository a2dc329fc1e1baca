package daemon

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/runtime"
)

// The runtime's defaults are the configuration's, so a runtime used
// without the daemon's config bounds imports the same way.
func TestImportLimitDefaultsMatchConfig(t *testing.T) {
	if got := importLimits(config.DefaultConfig().Images); got != runtime.DefaultImportLimits {
		t.Errorf("config [images] defaults = %+v, runtime.DefaultImportLimits = %+v", got, runtime.DefaultImportLimits)
	}
}

// An archive the runtime refuses (which ImportImage passes through) is
// INVALID_ARGUMENT.
func TestInvalidArchiveStatus(t *testing.T) {
	other := fmt.Errorf("x: %w", runtime.ErrInvalidArchive)
	if c := status.Code(toStatus(other)); c != codes.InvalidArgument {
		t.Errorf("toStatus(invalid archive) = %v, want InvalidArgument", c)
	}
}
