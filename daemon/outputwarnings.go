package daemon

import (
	"context"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/hostpath"
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
// manifests were truncated at tasks.max_output_files or
// max_output_path_bytes.
type outputWarnings struct {
	lines         []string // the task's warnings
	named         int      // fixes named in lines
	fixes, failed int64
	omitted       int64
	limit         string // the cap that cut the last truncated manifest
}

// add takes one channel's manifest; limit names the cap that cut it, if one
// did ("tasks.max_output_files = 100000", manifestBudget.take), and is ""
// otherwise or when nothing was to be listed (fixOutputs).
func (w *outputWarnings) add(m *outputs.Manifest, limit string) {
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
	if m.Omitted > 0 && limit != "" {
		w.omitted += m.Omitted
		w.limit = limit
		w.lines = append(w.lines, fmt.Sprintf("output channel %q: manifest truncated at %s (all channels of a task together): %d files listed, %d not listed (they are on the host and were checked like the rest)", m.Name, limit, m.FileCount, m.Omitted))
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
		parts = append(parts, fmt.Sprintf("manifests truncated at %s: %d files not listed (see warnings)", w.limit, w.omitted))
	}
	return strings.Join(parts, "; ")
}

// manifestBudget is what is left of tasks.max_output_files and
// max_output_path_bytes for the channels of a task still to be collected.
type manifestBudget struct {
	cfg              config.Tasks
	files, pathBytes int64
}

func newManifestBudget(cfg config.Tasks) *manifestBudget {
	return &manifestBudget{cfg: cfg, files: cfg.MaxOutputFiles, pathBytes: cfg.MaxOutputPathBytes.Bytes()}
}

// options are the next channel's collect options.
func (b *manifestBudget) options(workers int) outputs.Options {
	return outputs.Options{Workers: workers, MaxFiles: b.files, MaxPathBytes: b.pathBytes}
}

// take charges what m lists to the budget and returns the cap that cut m
// short, "" when none did.
func (b *manifestBudget) take(m *outputs.Manifest) string {
	limit := ""
	switch {
	case m.Omitted == 0:
	case m.FileCount >= b.files:
		limit = fmt.Sprintf("tasks.max_output_files = %d", b.cfg.MaxOutputFiles)
	default:
		limit = "tasks.max_output_path_bytes = " + b.cfg.MaxOutputPathBytes.String()
	}
	b.files -= m.FileCount
	for _, f := range m.Files {
		b.pathBytes -= int64(len(f.Path))
	}
	return limit
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
		err := d.withOutputRoot(task, i, func(dir *hostpath.Dir, root *os.Root) error {
			man, err := outputs.CollectRoot(ctx, m.GetName(), dir.Path(), root, outputs.Options{})
			if err == nil {
				w.add(man, "")
			}
			return err
		})
		if err != nil {
			w.lines = append(w.lines, fmt.Sprintf("output channel %q: not checked for setuid/setgid files and device nodes: %v", m.GetName(), err))
		}
	}
	return w.lines
}
