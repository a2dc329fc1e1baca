package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// isTerminal reports whether w is a terminal; tests replace it.
var isTerminal = func(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// watchRedrawInterval bounds how often the live table is redrawn, so a
// burst of changes is one redraw.
const watchRedrawInterval = 200 * time.Millisecond

// watchMaxRows is how many tasks the live table shows (newest first).
const watchMaxRows = 200

func newWatchCmd() *cobra.Command {
	var labels []string
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Follow every task state change on the node (live table on a terminal)",
		Long: "watch streams every task state change on the node, starting with every unfinished task.\n" +
			"On a terminal it keeps a live table, newest task first; otherwise it prints one line per change,\n" +
			"and with -o json one JSON object (a WatchTasksResponse) per line. Ctrl-C stops it (exit 0).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &pcnodev1.WatchTasksRequest{SendInitial: true}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok {
					return usagef("--label %s: want KEY=VALUE", quote(l))
				}
				if req.Labels == nil {
					req.Labels = map[string]string{}
				}
				req.Labels[k] = v
			}
			out := cmd.OutOrStdout()
			var view watchView
			switch {
			case jsonOutput(cmd):
				view = &watchJSON{w: out}
			case isTerminal(out):
				view = &watchTable{w: out, tasks: map[string]*pcnodev1.Task{}}
			default:
				view = &watchLines{w: out}
			}
			err := withClient(cmd, func(ctx context.Context, c *nodeConn) error {
				return watchTasks(ctx, c, req, view)
			})
			if cmd.Context().Err() != nil {
				return nil // Ctrl-C: the end of a watch, not a failure
			}
			return err
		},
	}
	cmd.Flags().StringArrayVar(&labels, "label", nil, "only tasks with label KEY=VALUE (repeatable)")
	return cmd
}

// watchView shows the changes of a watch.
type watchView interface {
	// change records one state change and may write it at once.
	change(ev *pcnodev1.TaskEvent) error
	// flush writes what changed since the last flush.
	flush() error
}

// watchTasks streams WatchTasks into view until the watch or ctx ends.
func watchTasks(ctx context.Context, c *nodeConn, req *pcnodev1.WatchTasksRequest, view watchView) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type recv struct {
		ev  *pcnodev1.TaskEvent
		err error
	}
	ch := make(chan recv, 64)
	go func() {
		// client.WatchTasks resumes a dropped stream from the last
		// revision it delivered: no change is shown twice or missed.
		err := c.watch(ctx, req, func(ev *pcnodev1.TaskEvent) error {
			select {
			case ch <- recv{ev: ev}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err == nil {
			err = io.EOF
		}
		select {
		case ch <- recv{err: err}:
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(watchRedrawInterval)
	defer tick.Stop()
	if err := view.flush(); err != nil { // the empty table until the first event
		return err
	}
	for {
		select {
		case r := <-ch:
			if r.err != nil {
				if ferr := view.flush(); ferr != nil {
					return ferr
				}
				if errors.Is(r.err, io.EOF) {
					return errors.New("the node ended the watch")
				}
				return r.err
			}
			if err := view.change(r.ev); err != nil {
				return err
			}
		case <-tick.C:
			if err := view.flush(); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// watchJSON writes each event as one stable JSON line.
type watchJSON struct{ w io.Writer }

func (v *watchJSON) change(ev *pcnodev1.TaskEvent) error {
	return printJSONLine(v.w, &pcnodev1.WatchTasksResponse{Event: ev})
}
func (v *watchJSON) flush() error { return nil }

// watchLines writes one line per change, for logs and pipes.
type watchLines struct{ w io.Writer }

func (v *watchLines) change(ev *pcnodev1.TaskEvent) error {
	_, err := io.WriteString(v.w, watchLine(ev))
	return err
}
func (v *watchLines) flush() error { return nil }

// watchLine is one change as a line: time, revision, id, state, reason and
// exit code when finished, image and name.
func watchLine(ev *pcnodev1.TaskEvent) string {
	t := ev.GetStateChange()
	var b strings.Builder
	fmt.Fprintf(&b, "%s", humanTime(ev.GetTime().AsTime()))
	if r := ev.GetRevision(); r != 0 {
		fmt.Fprintf(&b, " rev=%d", r)
	}
	fmt.Fprintf(&b, " %s %s", printable(t.GetId()), stateName(t.GetState()))
	if r := reasonName(t.GetReason()); r != "" {
		fmt.Fprintf(&b, " reason=%s exit=%d", r, t.GetExitCode())
	}
	fmt.Fprintf(&b, " image=%s", printable(t.GetSpec().GetImage()))
	if n := t.GetSpec().GetName(); n != "" {
		fmt.Fprintf(&b, " name=%s", quote(n))
	}
	b.WriteByte('\n')
	return b.String()
}

// watchTable keeps every task seen and redraws them as a table.
type watchTable struct {
	w     io.Writer
	tasks map[string]*pcnodev1.Task
	dirty bool
	drawn bool
}

func (v *watchTable) change(ev *pcnodev1.TaskEvent) error {
	if t := ev.GetStateChange(); t != nil {
		v.tasks[t.GetId()] = t
		v.dirty = true
	}
	return nil
}

func (v *watchTable) flush() error {
	if !v.dirty && v.drawn {
		return nil
	}
	v.dirty, v.drawn = false, true
	rows := watchMaxRows
	if f, ok := v.w.(*os.File); ok {
		if _, h, err := term.GetSize(int(f.Fd())); err == nil && h > 5 {
			rows = min(rows, h-5) // summary, blank, header, "older" line, prompt
		}
	}
	var b strings.Builder
	b.WriteString("\x1b[H\x1b[2J") // home, clear screen
	renderWatchTable(&b, v.tasks, rows)
	_, err := io.WriteString(v.w, b.String())
	return err
}

// renderWatchTable writes the live table: a summary line, then the newest
// rows tasks.
func renderWatchTable(w io.Writer, tasks map[string]*pcnodev1.Task, rows int) {
	ids := make([]string, 0, len(tasks))
	counts := map[pcnodev1.TaskState]int{}
	for id, t := range tasks {
		ids = append(ids, id)
		counts[t.GetState()]++
	}
	slices.Sort(ids)
	slices.Reverse(ids) // ids sort by submission time: newest first
	var sum []string
	for _, s := range []pcnodev1.TaskState{pcnodev1.TaskState_TASK_STATE_QUEUED, pcnodev1.TaskState_TASK_STATE_PREPARING,
		pcnodev1.TaskState_TASK_STATE_RUNNING, pcnodev1.TaskState_TASK_STATE_SUCCEEDED,
		pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskState_TASK_STATE_CANCELLED} {
		sum = append(sum, fmt.Sprintf("%d %s", counts[s], stateName(s)))
	}
	fmt.Fprintf(w, "%s  %s  (Ctrl-C to stop)\n\n", humanTime(now()), strings.Join(sum, ", "))
	shown := ids[:min(len(ids), max(rows, 1))]
	list := make([]*pcnodev1.Task, len(shown))
	for i, id := range shown {
		list[i] = tasks[id]
	}
	printTaskTable(w, list)
	if n := len(ids) - len(shown); n > 0 {
		fmt.Fprintf(w, "… and %d older tasks (pcnode-cli list shows them)\n", n)
	}
}

// printTaskTable writes tasks as the list table: id, state, reason, exit
// code, age, how long it ran (or has been running), image and name.
func printTaskTable(w io.Writer, tasks []*pcnodev1.Task) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tREASON\tEXIT\tAGE\tDURATION\tIMAGE\tNAME")
	for _, t := range tasks {
		reason, exit := reasonName(t.GetReason()), "-"
		if reason == "" {
			reason = "-"
		}
		if t.GetFinishTime() != nil && t.GetStartTime() != nil {
			exit = fmt.Sprint(t.GetExitCode())
		}
		name := t.GetSpec().GetName()
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(t.GetId()), stateName(t.GetState()), reason, exit,
			humanAge(t.GetCreateTime().AsTime()), taskDuration(t), printable(t.GetSpec().GetImage()), printable(name))
	}
	tw.Flush()
}

// taskDuration is how long a task ran: start to finish, start to now while
// it runs, "-" before it started.
func taskDuration(t *pcnodev1.Task) string {
	if t.GetStartTime() == nil {
		return "-"
	}
	end := now()
	if t.GetFinishTime() != nil {
		end = t.GetFinishTime().AsTime()
	}
	return humanDuration(end.Sub(t.GetStartTime().AsTime()))
}
