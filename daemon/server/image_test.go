package server

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pcnode/pcnode/daemon/runtime"
)

func TestImportStatus(t *testing.T) {
	le := &runtime.ImportLimitError{Limit: runtime.LimitImportEntries, Max: 100, What: "entry 101"}
	err := importStatus(fmt.Errorf("import: %w", le))
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("importStatus(limit) code = %v, want ResourceExhausted", st.Code())
	}
	var subject string
	for _, d := range st.Details() {
		if qf, ok := d.(*errdetails.QuotaFailure); ok && len(qf.GetViolations()) == 1 {
			subject = qf.GetViolations()[0].GetSubject()
		}
	}
	if subject != "images.max_import_entries" {
		t.Errorf("importStatus(limit) = %v with quota subject %q, want images.max_import_entries", err, subject)
	}
	other := fmt.Errorf("x: %w", runtime.ErrInvalidArchive)
	if got := importStatus(other); !errors.Is(got, runtime.ErrInvalidArchive) {
		t.Errorf("importStatus(invalid archive) = %v, want it passed through", got)
	}
}
