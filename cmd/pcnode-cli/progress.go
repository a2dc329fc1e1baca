package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync/atomic"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// progressView shows how far an image pull or import is, over the whole
// image: a progress bar when stdout is a terminal, a plain line on stderr
// at each change of status and each quarter done otherwise, nothing with
// -o json.
type progressView interface {
	update(status string, done, total int64)
	// finish ends the view; ok says whether the transfer completed.
	finish(ok bool)
}

// newProgressView picks the view for cmd; what names the transfer
// ("pull REF", "import FILE").
func newProgressView(ctx context.Context, cmd *cobra.Command, what string) progressView {
	switch {
	case jsonOutput(cmd):
		return nopProgress{}
	case isTerminal(cmd.OutOrStdout()):
		return newBarProgress(ctx, cmd.OutOrStdout(), what)
	}
	return &lineProgress{w: cmd.ErrOrStderr(), what: what, quarter: -1}
}

type nopProgress struct{}

func (nopProgress) update(string, int64, int64) {}
func (nopProgress) finish(bool)                 {}

// lineProgress writes a line when the status changes or another quarter of
// the total is done.
type lineProgress struct {
	w       io.Writer
	what    string
	status  string
	quarter int64
}

func (p *lineProgress) update(status string, done, total int64) {
	q := int64(-1)
	if total > 0 {
		q = min(done, total) * 4 / total
	}
	if status == p.status && q == p.quarter {
		return
	}
	p.status, p.quarter = status, q
	if total > 0 {
		fmt.Fprintf(p.w, "%s: %s %s of %s (%s)\n", p.what, status, humanBytes(done), humanBytes(total), humanPercent(done, total))
		return
	}
	fmt.Fprintf(p.w, "%s: %s %s\n", p.what, status, humanBytes(done))
}

func (p *lineProgress) finish(bool) {}

// barProgress is one mpb bar for the whole image.
type barProgress struct {
	p      *mpb.Progress
	bar    *mpb.Bar
	status atomic.Pointer[string] // read by the decorator while the bar renders
}

func newBarProgress(ctx context.Context, w io.Writer, what string) *barProgress {
	b := &barProgress{p: mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithAutoRefresh())}
	b.bar = b.p.AddBar(0,
		mpb.PrependDecorators(
			decor.Name(what, decor.WCSyncSpaceR),
			decor.Any(func(decor.Statistics) string {
				if s := b.status.Load(); s != nil {
					return *s
				}
				return ""
			}, decor.WCSyncSpaceR),
		),
		mpb.AppendDecorators(
			decor.Any(func(s decor.Statistics) string {
				if s.Total <= 0 {
					return humanBytes(s.Current)
				}
				return humanBytes(s.Current) + " / " + humanBytes(s.Total) + "  " + humanPercent(s.Current, s.Total)
			}),
		),
	)
	return b
}

func (b *barProgress) update(status string, done, total int64) {
	b.status.Store(&status)
	if total > 0 {
		b.bar.SetTotal(total, false)
	}
	b.bar.SetCurrent(done)
}

func (b *barProgress) finish(ok bool) {
	if ok {
		b.bar.SetTotal(-1, true)
	} else {
		b.bar.Abort(false)
	}
	b.p.Wait()
}

// pullAggregate sums a pull's per-blob progress into one figure for the
// whole image. The daemon reports every blob of the image once as
// "waiting" with its size, then "downloading" with its offset while it
// comes in, then "done". ImageProgress does not carry the blob's digest,
// so downloads are told apart by their size; two blobs of exactly the same
// size share a line of accounting until they are done, which only makes
// the bar lag, never overshoot, as done is capped by the total.
type pullAggregate struct {
	total int64           // sum of every blob announced
	done  map[int64]int64 // blob size → bytes of it downloaded
	phase int             // index in pullPhases of the furthest status seen
}

// pullPhases are the statuses of the whole image, in order: a blob still
// waiting does not turn a downloading image back to waiting.
var pullPhases = []string{"waiting", "downloading", "done"}

// add folds p in and returns the image's status, bytes done and total.
func (a *pullAggregate) add(p *pcnodev1.ImageProgress) (status string, done, total int64) {
	for i, ph := range pullPhases {
		if ph == p.GetStatus() || (i == 1 && !slices.Contains(pullPhases, p.GetStatus())) {
			a.phase = max(a.phase, i)
		}
	}
	if a.done == nil {
		a.done = map[int64]int64{}
	}
	size := p.GetTotalBytes()
	switch p.GetStatus() {
	case "waiting":
		a.total += size
		if _, ok := a.done[size]; !ok {
			a.done[size] = 0
		}
	case "done":
		a.done[size] = size
	default:
		a.done[size] = max(a.done[size], min(p.GetDoneBytes(), size))
	}
	for _, d := range a.done {
		done += d
	}
	return pullPhases[a.phase], min(done, a.total), a.total
}
