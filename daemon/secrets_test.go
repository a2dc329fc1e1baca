package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/secrets"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// secretSpec is a spec whose env[1] names the secret.
func secretSpec(name string) *pcnodev1.TaskSpec {
	s := validSpec()
	s.Env = []*pcnodev1.EnvVar{{Name: "A", Value: "1"}, {Name: "PASSWORD", Secret: name}}
	return s
}

// TestCheckSecretsWithoutStore: a node without [secrets] dir refuses a spec
// naming a secret with FAILED_PRECONDITION, a violation at spec.env[1].secret
// that names [secrets] dir; a spec naming none passes.
func TestCheckSecretsWithoutStore(t *testing.T) {
	d := &Daemon{}
	if err := d.checkSecrets(t.Context(), validSpec()); err != nil {
		t.Errorf("checkSecrets(no secret) = %v, want nil", err)
	}
	err := toStatus(d.checkSecrets(t.Context(), secretSpec("project-password")))
	if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition {
		t.Fatalf("checkSecrets without a store = %v, want FailedPrecondition", err)
	}
	fv := badRequest(t, err)
	if len(fv) != 1 || fv[0].GetField() != "spec.env[1].secret" || !strings.Contains(fv[0].GetDescription(), "[secrets] dir") {
		t.Errorf("violations = %v, want one at spec.env[1].secret naming [secrets] dir", fv)
	}
}

// TestCheckSecretsMissing: with a store, a secret that does not exist is
// FAILED_PRECONDITION at its field; one that does passes.
func TestCheckSecretsMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "present"), []byte("v"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{secrets: secrets.New(dir, 64)}
	if os.Getuid() == 0 {
		if err := d.checkSecrets(t.Context(), secretSpec("present")); err != nil {
			t.Errorf("checkSecrets(present) = %v, want nil", err)
		}
	}
	err := toStatus(d.checkSecrets(t.Context(), secretSpec("absent")))
	if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition {
		t.Fatalf("checkSecrets(absent) = %v, want FailedPrecondition", err)
	}
	if fv := badRequest(t, err); len(fv) != 1 || fv[0].GetField() != "spec.env[1].secret" || !strings.Contains(fv[0].GetDescription(), `"absent"`) {
		t.Errorf("violations = %v, want one at spec.env[1].secret naming the secret", fv)
	}
}

// TestValidateSecretFields: the secret's name is checked and value must
// then be empty (INVALID_ARGUMENT, before any store is asked).
func TestValidateSecretFields(t *testing.T) {
	s := secretSpec("../shadow")
	s.Env[1].Value = "x"
	p := validateSpecFields(s, false, testLimits)
	var fields []string
	for _, x := range p {
		fields = append(fields, x.GetField())
	}
	if got := strings.Join(fields, ","); !strings.Contains(got, "spec.env[1].secret") || !strings.Contains(got, "spec.env[1].value") {
		t.Errorf("validateSpecFields(secret ../shadow with a value) fields = %s, want spec.env[1].secret and spec.env[1].value", got)
	}
}

// TestCheckSecretsGrants: an API caller may name only the secrets a
// [[secrets.grants]] entry of one of its identities covers; anyone else gets
// PERMISSION_DENIED at the field, before the store is asked (so an ungranted
// caller cannot learn which secrets exist). In-process calls are not API
// callers and pass.
func TestCheckSecretsGrants(t *testing.T) {
	d := &Daemon{cfg: config.DefaultConfig()}
	d.cfg.Secrets.Grants = []config.SecretGrant{
		{Identity: "spiffe://x/airflow", Secrets: []string{"kaapana-*"}},
		{Identity: "gid:1500", Secrets: []string{"project-password"}},
	}
	as := func(name string, match ...string) context.Context {
		return context.WithValue(t.Context(), callerKey{}, caller{id: identity{name: name, match: append([]string{name}, match...)}, role: roleSubmitter})
	}
	cases := []struct {
		name   string
		ctx    context.Context
		secret string
		want   codes.Code
	}{
		// Granted: the store is asked next (there is none: FAILED_PRECONDITION).
		{"pattern match", as("spiffe://x/airflow"), "kaapana-client-secret", codes.FailedPrecondition},
		{"group grant", as("uid:1000", "gid:1000", "gid:1500"), "project-password", codes.FailedPrecondition},
		{"in-process", t.Context(), "anything", codes.FailedPrecondition},
		// Not granted.
		{"pattern miss", as("spiffe://x/airflow"), "project-password", codes.PermissionDenied},
		{"other identity", as("spiffe://x/other"), "kaapana-client-secret", codes.PermissionDenied},
		{"root not granted here", as("uid:0", "gid:0"), "kaapana-client-secret", codes.PermissionDenied},
		{"unauthenticated", as(""), "kaapana-client-secret", codes.PermissionDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := toStatus(d.checkSecrets(tc.ctx, secretSpec(tc.secret)))
			st, _ := status.FromError(err)
			if st.Code() != tc.want {
				t.Fatalf("checkSecrets = %v, want %v", err, tc.want)
			}
			fv := badRequest(t, err)
			if len(fv) != 1 || fv[0].GetField() != "spec.env[1].secret" {
				t.Fatalf("violations = %v, want one at spec.env[1].secret", fv)
			}
			if tc.want == codes.PermissionDenied && !strings.Contains(fv[0].GetDescription(), "[[secrets.grants]]") {
				t.Errorf("description %q does not name [[secrets.grants]]", fv[0].GetDescription())
			}
		})
	}
}
