package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// specTestdata is daemon/spec's testdata: Kaapana's example files and
// pcnode's valid and invalid examples.
const specTestdata = "../../daemon/spec/testdata"

// runCLI runs pcnode-cli in process and returns its output and exit status.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = execute(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestExitStatusUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"help", []string{"--help"}, exitOK, ""},
		{"no command prints help", nil, exitOK, ""},
		{"unknown command", []string{"valdate"}, exitUsage, `unknown command "valdate"; did you mean validate?`},
		{"unknown flag", []string{"validate", "--bogus", "x.json"}, exitUsage, "unknown flag: --bogus"},
		{"bad output format", []string{"-o", "yaml", "validate", specTestdata + "/pcnode/task.json"}, exitUsage, "-o/--output must be text or json"},
		{"validate without a file", []string{"validate"}, exitUsage, "want one FILE, got 0 argument(s)"},
		{"validate two files", []string{"validate", "a", "b"}, exitUsage, "want one FILE, got 2 argument(s)"},
		{"bad schema word", []string{"validate", "--schema", "yaml", specTestdata + "/pcnode/task.json"}, exitUsage, "--schema must be pc or task"},
		{"--pc with a pc", []string{"validate", "--pc", specTestdata + "/pcnode/processing-container.json", specTestdata + "/pcnode/processing-container.json"}, exitUsage, "--pc applies to a task.json only"},
		{"resolve without a task", []string{"resolve", "--pc", "x"}, exitUsage, "want one TASK.json"},
		{"another command's argument error", []string{"get"}, exitUsage, "accepts 1 arg(s), received 0"},
		{"missing file", []string{"validate", "/nonexistent/task.json"}, exitInvalid, "no such file or directory"},
		{"tcp address without TLS", []string{"--address", "node1.example.org:7443", "node"}, exitUsage, "which pcnoded serves only over TLS: set --tls-ca"},
		{"TLS flag with a socket", []string{"--address", "/run/x.sock", "--tls-cert", "c.pem", "node"}, exitUsage, "--tls-cert applies to host:port addresses only"},
		{"bad address", []string{"--address", "node1", "list"}, exitUsage, "want an absolute unix socket path"},
		{"no daemon at the socket", []string{"--address", "/nonexistent/pcnoded.sock", "node"}, exitInvalid,
			"hint: there is no socket at /nonexistent/pcnoded.sock (from --address): is pcnoded running"},
		{"watch label without =", []string{"--address", "/nonexistent/pcnoded.sock", "watch", "--label", "x"}, exitUsage, "--label \"x\": want KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("pcnode-cli %q = exit %d, stderr %q; want exit %d, stderr containing %q (stdout %q)",
					tt.args, code, stderr, tt.wantCode, tt.wantStderr, stdout)
			}
		})
	}
}

func TestRootCommandsRegistered(t *testing.T) {
	root := newRootCmd()
	for _, name := range []string{"validate", "resolve"} {
		if c, _, err := root.Find([]string{name}); err != nil || c.Name() != name {
			t.Errorf("newRootCmd().Find(%q) = %v, %v; want the %s command", name, c, err, name)
		}
	}
	if f := root.PersistentFlags().ShorthandLookup("o"); f == nil || f.Name != "output" || f.DefValue != formatText {
		t.Errorf("root -o flag = %+v, want --output defaulting to text", f)
	}
}
