package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every file of Kaapana's example set validates, its JSON Schemas and every
// processing-container.json and task.json Kaapana published included, except
// the obsolete ones published/rejected.json lists, which are refused.
func TestValidateEveryKaapanaFile(t *testing.T) {
	root := filepath.Join("..", "..", "daemon", "spec", "testdata", "kaapana")
	published := filepath.Join(root, "published")
	b, err := os.ReadFile(filepath.Join(published, "rejected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rejected []struct{ File string }
	if err := json.Unmarshal(b, &rejected); err != nil || len(rejected) == 0 {
		t.Fatalf("rejected.json: %v (%d entries)", err, len(rejected))
	}
	refuse := map[string]bool{}
	for _, r := range rejected {
		refuse[filepath.Join(published, filepath.FromSlash(r.File))] = true
	}
	n := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") || path == filepath.Join(published, "rejected.json") {
			return err
		}
		n++
		stdout, stderr, code := runCLI(t, "validate", path)
		switch want := exitOK; {
		case refuse[path] && code != exitInvalid:
			t.Errorf("validate %s = exit %d, want %d (an obsolete Kaapana format)\n%s%s", path, code, exitInvalid, stdout, stderr)
		case !refuse[path] && code != want:
			t.Errorf("validate %s = exit %d, want 0\n%s%s", path, code, stdout, stderr)
		}
		return nil
	})
	if err != nil || n < 50 {
		t.Fatalf("walking %s: %v (%d files)", root, err, n)
	}
}

// Kaapana's Python spellings of env types validate, and a value is checked
// as the canonical type's, naming the field.
func TestValidateEnvTypeAlias(t *testing.T) {
	dir := t.TempDir()
	for value, want := range map[string]int{"7": exitOK, "seven": exitInvalid} {
		f := filepath.Join(dir, "processing-container.json")
		doc := `{"name": "n", "description": "d", "api_version": 1, "templates": [{"identifier": "t", "description": "d",
			"inputs": [], "outputs": [], "env": [{"name": "N", "value": "` + value + `", "type": "int"}]}]}`
		if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := runCLI(t, "validate", f)
		if code != want {
			t.Errorf("validate (int, %q) = exit %d, want %d\n%s%s", value, code, want, stdout, stderr)
		}
		if want == exitInvalid && !strings.Contains(stdout+stderr, `templates[0].env[0].value: "seven" is not an integer`) {
			t.Errorf("validate (int, %q) output does not name the field and reason:\n%s%s", value, stdout, stderr)
		}
	}
}

func TestValidateJSONSchema(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.schema.json")
	if err := os.WriteFile(bad, []byte(`{"$defs": {}, "properties": {"a": {"type": "strin"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _, code := runCLI(t, "validate", "-o", "json", bad)
	if code != exitInvalid {
		t.Fatalf("validate %s = exit %d, want %d", bad, code, exitInvalid)
	}
	rep := decodeReport(t, stdout)
	if rep.Kind != kindJSONSchema || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Description, "not a valid JSON Schema") {
		t.Errorf("validate %s = %+v, want one problem saying it is not a valid JSON Schema", bad, rep)
	}
}
