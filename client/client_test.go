package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestFromError(t *testing.T) {
	st := status.New(codes.InvalidArgument, "spec.inputs[0].host_path: outside the data roots (and 1 more)")
	st, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: "spec.inputs[0].host_path", Description: "outside the data roots"},
		{Field: "spec.image", Description: "required"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := FromError(st.Err())
	var e *Error
	if !errors.As(got, &e) {
		t.Fatalf("FromError() = %T, want *Error", got)
	}
	if e.Code != codes.InvalidArgument {
		t.Errorf("Code = %v, want InvalidArgument", e.Code)
	}
	want := []*pcnodev1.Problem{
		{Field: "spec.inputs[0].host_path", Description: "outside the data roots"},
		{Field: "spec.image", Description: "required"},
	}
	if diff := cmp.Diff(want, e.Violations, protocmp.Transform()); diff != "" {
		t.Errorf("Violations (-want +got):\n%s", diff)
	}
	if msg := got.Error(); !strings.Contains(msg, "spec.image: required") {
		t.Errorf("Error() = %q, want it to list every violation", msg)
	}
	if Code(got) != codes.InvalidArgument {
		t.Errorf("Code(FromError()) = %v, want InvalidArgument", Code(got))
	}
}

func TestFromErrorOther(t *testing.T) {
	if FromError(nil) != nil {
		t.Error("FromError(nil) != nil")
	}
	plain := errors.New("plain")
	if got := FromError(plain); got != plain {
		t.Errorf("FromError(plain) = %v, want it unchanged", got)
	}
	if got := FromError(status.Error(codes.Unavailable, "connection refused")); !strings.Contains(got.Error(), "not reachable") {
		t.Errorf("FromError(Unavailable) = %q, want it to say the daemon is not reachable", got)
	}
	if Code(nil) != codes.OK {
		t.Errorf("Code(nil) = %v, want OK", Code(nil))
	}
}

func TestDial(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"/run/pcnode/pcnoded.sock", true},
		{"unix:///run/pcnode/pcnoded.sock", true},
		{"localhost:7777", false},
		{"", false},
	} {
		c, err := Dial(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("Dial(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
		if c != nil {
			c.Close()
		}
	}
}
