package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	if err := d.checkSecrets(validSpec()); err != nil {
		t.Errorf("checkSecrets(no secret) = %v, want nil", err)
	}
	err := toStatus(d.checkSecrets(secretSpec("project-password")))
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
		if err := d.checkSecrets(secretSpec("present")); err != nil {
			t.Errorf("checkSecrets(present) = %v, want nil", err)
		}
	}
	err := toStatus(d.checkSecrets(secretSpec("absent")))
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
