package logs

import (
	"bytes"
	"path/filepath"
	"testing"
)

// TestCaptureAllocatesNothingPerEntry: once running, capturing an entry
// allocates nothing, so a logging binary's heap does not grow with the
// output it captures (pcnode-logd's memory stays at its fixed buffers).
func TestCaptureAllocatesNothingPerEntry(t *testing.T) {
	w, err := openWriter(t.Context(), filepath.Join(t.TempDir(), "log"), DefaultMaxFileBytes, DefaultMaxFiles)
	if err != nil {
		t.Fatal(err)
	}
	c := &capture{w: w, log: discardLogger{}}
	chunks := [][]byte{[]byte("a line of output\n"), bytes.Repeat([]byte("x"), MaxEntryBytes)}
	c.emit(kindStdout, chunks) // the first segment is created on the first write
	if allocs := testing.AllocsPerRun(100, func() { c.emit(kindStderr, chunks) }); allocs != 0 {
		t.Errorf("capture.emit of %d entries allocates %v times, want 0", len(chunks), allocs)
	}
	if err := errorsOf(c); err != nil {
		t.Fatal(err)
	}
	if err := w.end(); err != nil {
		t.Fatal(err)
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
}

// errorsOf returns the capture's first write error.
func errorsOf(c *capture) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.werr
}
