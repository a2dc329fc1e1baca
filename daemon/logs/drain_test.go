package logs

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRequestDrainRefusesNonFIFO: RequestDrain writes only into a FIFO of
// the log directory itself, never a file or through a link there.
func TestRequestDrainRefusesNonFIFO(t *testing.T) {
	dir := t.TempDir()
	if told, err := RequestDrain(dir); err != nil || told {
		t.Errorf("RequestDrain without a FIFO = %v, %v; want false, nil", told, err)
	}
	path := filepath.Join(dir, DrainFileName)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if told, err := RequestDrain(dir); err == nil || told {
		t.Errorf("RequestDrain with a regular file = %v, %v; want an error", told, err)
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Errorf("RequestDrain wrote %q into a regular file", b)
	}
	os.Remove(path)
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if told, err := RequestDrain(dir); err == nil || told {
		t.Errorf("RequestDrain through a symbolic link = %v, %v; want an error", told, err)
	}
	if b, _ := os.ReadFile(target); len(b) != 0 {
		t.Errorf("RequestDrain wrote %q through a symbolic link", b)
	}
}
