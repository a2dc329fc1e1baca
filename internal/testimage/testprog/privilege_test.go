package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestChmodStep(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	prog := &program{stdout: &out, stderr: &out, getenv: func(string) string { return "" }, environ: os.Environ}
	if code := prog.main([]string{"pctest", "chmod", p, "6755"}); code != 0 {
		t.Fatalf("pctest chmod %s 6755 = exit %d: %s", p, code, out.String())
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode() != 0o755|os.ModeSetuid|os.ModeSetgid {
		t.Errorf("after chmod 6755: %v, %v; want -rwsr-sr-x", fi.Mode(), err)
	}
	if code := prog.main([]string{"pctest", "chmod", p, "9"}); code != exitUsage {
		t.Errorf("pctest chmod %s 9 = exit %d, want usage error %d", p, code, exitUsage)
	}
}
