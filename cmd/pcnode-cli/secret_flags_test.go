package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// A task.json env entry may name a node secret, and --secret-env sets or
// replaces a variable from one; the request carries names only.
func TestSecretEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "task.json")
	doc := `{"name": "n", "image": "img", "taskTemplate": "t", "inputs": [], "outputs": [],
		"env": [{"name": "PASSWORD", "secret": "project-password"}, {"name": "CLIENT_SECRET", "value": "inline"}]}`
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	var f specFlags
	cmd := &cobra.Command{}
	f.register(cmd)
	if err := cmd.Flags().Set("secret-env", "CLIENT_SECRET=kaapana-client-secret"); err != nil {
		t.Fatal(err)
	}
	req, err := f.request(cmd, path)
	if err != nil {
		t.Fatalf("request = %v", err)
	}
	var got []string
	for _, e := range req.GetSpec().GetEnv() {
		got = append(got, e.GetName()+"="+e.GetValue()+"|"+e.GetSecret())
	}
	if want := "PASSWORD=|project-password,CLIENT_SECRET=|kaapana-client-secret"; strings.Join(got, ",") != want {
		t.Errorf("env = %s, want %s", strings.Join(got, ","), want)
	}
	bad := specFlags{secretEnv: []string{"NOEQUALS"}}
	if _, err := bad.request(cmd, path); err == nil || !strings.Contains(err.Error(), "--secret-env") {
		t.Errorf("request(--secret-env NOEQUALS) = %v, want an error naming the flag", err)
	}
}

// pcnode-cli validate accepts a task.json env entry naming a secret, and
// refuses one that also gives a value or names no valid secret.
func TestValidateSecretEnv(t *testing.T) {
	dir := t.TempDir()
	for env, want := range map[string]string{
		`{"name": "P", "secret": "project-password"}`:               "",
		`{"name": "P", "secret": "project-password", "value": "x"}`: "env[0].value",
		`{"name": "P", "secret": "../shadow"}`:                      "env[0].secret",
		`{"name": "P"}`:                                             "env[0].value",
	} {
		f := filepath.Join(dir, "task.json")
		doc := `{"name": "n", "image": "img", "taskTemplate": "t", "inputs": [], "outputs": [], "env": [` + env + `]}`
		if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := runCLI(t, "validate", f)
		switch {
		case want == "" && code != exitOK:
			t.Errorf("validate env %s = exit %d, want 0\n%s%s", env, code, stdout, stderr)
		case want != "" && (code != exitInvalid || !strings.Contains(stdout+stderr, want+":")):
			t.Errorf("validate env %s = exit %d, want %d naming %s\n%s%s", env, code, exitInvalid, want, stdout, stderr)
		}
	}
}
