package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pcnode/pcnode/daemon/spec"
	"github.com/pcnode/pcnode/daemon/spec/schema"
)

// inProcessSchemas is the check pcnode-schema makes, in the test process.
type inProcessSchemas struct{}

func (inProcessSchemas) Ready() error { return nil }

func (inProcessSchemas) Check(kind schemaKind, data []byte) (spec.Problems, error) {
	return schema.Check(schema.Kind(kind), data)
}

// The in-process tests of validate check through the schemas package
// directly; TestValidateRunsSchemaBinary checks the two binaries together.
func init() { schemas = inProcessSchemas{} }

// TestCLIDoesNotLinkSchemas checks that pcnode-cli links neither the JSON
// Schema library nor the schemas package, whose initialisation would cost
// every command: validate reaches them through pcnode-schema.
func TestCLIDoesNotLinkSchemas(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/santhosh-tekuri/jsonschema") || dep == "github.com/pcnode/pcnode/daemon/spec/schema" {
			t.Errorf("pcnode-cli links %s", dep)
		}
	}
}

// TestValidateRunsSchemaBinary builds pcnode-cli and pcnode-schema side by
// side and checks that validate, run as the binary, says exactly what the
// in-process validate says (stdout and exit status) for valid and invalid
// documents of every kind; and that without pcnode-schema it fails saying
// what is missing, before reading the file.
func TestValidateRunsSchemaBinary(t *testing.T) {
	dir := t.TempDir()
	for _, pkg := range []string{".", "../pcnode-schema"} {
		if out, err := exec.Command("go", "build", "-o", dir+"/", pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	write := func(name, body string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	runs := [][]string{
		{"validate", specTestdata + "/pcnode/processing-container.json"},
		{"validate", "-o", "json", specTestdata + "/pcnode/task.json"},
		{"validate", "--pc", specTestdata + "/pcnode/processing-container.json", specTestdata + "/pcnode/task.json"},
		{"validate", "-o", "json", write("bad-task.json", `{"name": 3, "image": "busybox", "taskTemplate": "t", "inputs": [{"name": 4}]}`)},
		{"validate", "--schema", "pc", write("bad-pc.json", `{"templates": [{"identifier": 1}]}`)},
		{"validate", "--schema", "task", write("not-json.json", `{"name": `)},
		{"validate", write("good.schema.json", `{"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": {}, "properties": {"a": {"type": "string"}}}`)},
		{"validate", "-o", "json", write("bad.schema.json", `{"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": {}, "properties": {"a": {"type": "strin"}}}`)},
	}
	for _, args := range runs {
		wantOut, _, wantCode := runCLI(t, args...)
		cmd := exec.Command(filepath.Join(dir, "pcnode-cli"), args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if out.String() != wantOut || code != wantCode {
			t.Errorf("pcnode-cli %s: exit %d, stdout:\n%s\nwant exit %d, stdout:\n%s\n(stderr: %s)", strings.Join(args, " "), code, out.String(), wantCode, wantOut, errb.String())
		}
	}

	if err := os.Remove(filepath.Join(dir, "pcnode-schema")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "pcnode-cli"), "validate", specTestdata+"/pcnode/task.json")
	cmd.Env = []string{"PATH=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("validate without pcnode-schema: %v, want a failure\n%s", err, out)
	}
	if !strings.Contains(string(out), "validate needs pcnode-schema") || !strings.Contains(string(out), filepath.Join(dir, "pcnode-schema")) {
		t.Errorf("validate without pcnode-schema said %q, want it to name what is missing and where it was looked for", out)
	}
}
