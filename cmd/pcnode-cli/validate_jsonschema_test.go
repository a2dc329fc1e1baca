package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every file of Kaapana's example set validates, its JSON Schemas included.
func TestValidateEveryKaapanaFile(t *testing.T) {
	root := filepath.Join("..", "..", "daemon", "spec", "testdata", "kaapana")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		n++
		if stdout, stderr, code := runCLI(t, "validate", path); code != exitOK {
			t.Errorf("validate %s = exit %d, want 0\n%s%s", path, code, stdout, stderr)
		}
		return nil
	})
	if err != nil || n < 6 {
		t.Fatalf("walking %s: %v (%d files)", root, err, n)
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
