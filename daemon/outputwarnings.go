package daemon

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pcnode/pcnode/daemon/outputs"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Bounds on what a task's record carries about its output channels, so
// that a container writing a million setuid files cannot grow it.
const (
	// maxFixWarnings is how many fixes are named one by one, all channels
	// together; the rest are counted.
	maxFixWarnings = 20
	// maxWarningPath is the most bytes of a path a warning quotes.
	maxWarningPath = 200
)

// outputWarnings gathers, over a task's output channels, the warnings that
// say what the manifest walks fixed (setuid/setgid bits cleared, device
// nodes removed, over-deep directories locked, and what failed) and which
// manifests were truncated at tasks.max_output_files.
type outputWarnings struct {
	lines         []string // the task's warnings
	named         int      // fixes named in lines
	fixes, failed int64
	omitted       int64
	maxFiles      int64
}

// add takes one channel's manifest; maxFiles is tasks.max_output_files, or 0
// when nothing was to be listed (fixOutputs).
func (w *outputWarnings) add(m *outputs.Manifest, maxFiles int64) {
	w.fixes += m.FixCount
	w.failed += m.FixFailures
	named := 0
	for _, f := range m.Fixes {
		if w.named == maxFixWarnings {
			break
		}
		f.Path = clipPath(f.Path)
		w.lines = append(w.lines, fmt.Sprintf("output channel %q: %s", m.Name, f.String()))
		w.named++
		named++
	}
	if rest := m.FixCount - int64(named); rest > 0 {
		w.lines = append(w.lines, fmt.Sprintf("output channel %q: %d more setuid/setgid files, device nodes or over-deep directories fixed, not named here (%d fixes of this channel failed in all)", m.Name, rest, m.FixFailures))
	}
	if m.Omitted > 0 && maxFiles > 0 {
		w.omitted += m.Omitted
		w.maxFiles = maxFiles
		w.lines = append(w.lines, fmt.Sprintf("output channel %q: manifest truncated at tasks.max_output_files = %d (all channels of a task together): %d files listed, %d not listed (they are on the host and were checked like the rest)", m.Name, maxFiles, m.FileCount, m.Omitted))
	}
}

// summary is one line for the task's message, "" when nothing happened.
func (w *outputWarnings) summary() string {
	var parts []string
	if w.fixes > 0 {
		s := fmt.Sprintf("%d setuid/setgid files, device nodes or over-deep directories fixed so that no privilege is left on the host", w.fixes)
		if w.failed > 0 {
			s += fmt.Sprintf(", %d of them FAILED", w.failed)
		}
		parts = append(parts, s+" (see warnings)")
	}
	if w.omitted > 0 {
		parts = append(parts, fmt.Sprintf("manifests truncated at tasks.max_output_files = %d: %d files not listed (see warnings)", w.maxFiles, w.omitted))
	}
	return strings.Join(parts, "; ")
}

// clipPath shortens p to at most maxWarningPath bytes, on a rune boundary.
func clipPath(p string) string {
	if len(p) <= maxWarningPath {
		return p
	}
	cut := maxWarningPath
	for cut > 0 && !utf8.RuneStart(p[cut]) {
		cut--
	}
	return p[:cut] + "…"
}

// fixOutputs walks the output channels of a task whose container ran but
// whose outputs are not collected (it became LOST) only so that it leaves no
// privilege behind: nothing is listed or hashed. It returns the warnings
// saying what was fixed, or which channel could not be checked.
func (d *Daemon) fixOutputs(ctx context.Context, task *pcnodev1.Task) []string {
	w := &outputWarnings{}
	for i, m := range task.GetInstance().GetOutputs() {
		resolved, err := d.paths.Check(fmt.Sprintf("outputs[%d].host_path", i), m.GetHostPath(), true)
		if err == nil {
			var man *outputs.Manifest
			if man, err = outputs.CollectWith(ctx, m.GetName(), resolved, outputs.Options{MaxFiles: 0}); err == nil {
				w.add(man, 0)
			}
		}
		if err != nil {
			w.lines = append(w.lines, fmt.Sprintf("output channel %q: not checked for setuid/setgid files and device nodes: %v", m.GetName(), err))
		}
	}
	return w.lines
}
