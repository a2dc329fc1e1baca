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

	"github.com/pcnode/pcnode/daemon/spec"
	"github.com/pcnode/pcnode/daemon/specpb"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// The commands in this file talk to a running pcnoded: over its unix
// socket, or over TCP with TLS (see dial.go for --address and the TLS
// flags).

// addDaemonCommands registers the commands that need a daemon.
func addDaemonCommands(root *cobra.Command) {
	addConnFlags(root)
	root.AddCommand(newSubmitCmd(), newRunCmd(), newLogsCmd(), newGetCmd(), newListCmd(), newCancelCmd(),
		newWatchCmd(), newNodeCmd(), newImageCmd(), newPCCmd())
}

func jsonOutput(cmd *cobra.Command) bool {
	o, _ := cmd.Flags().GetString("output")
	return o == formatJSON
}

// readTaskFile reads a Kaapana task.json, substituting {{ env.NAME }} from
// the environment, and returns it as an API spec.
func readTaskFile(cmd *cobra.Command, path string) (*pcnodev1.TaskSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, warnings, err := spec.ParseTask(data, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, w := range warnings {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %s\n", path, w)
	}
	return specpb.TaskSpec(t), nil
}

// specFlags are the submit/run options that task.json cannot express.
type specFlags struct {
	key        string
	labels     []string
	priority   int32
	timeout    time.Duration
	startup    time.Duration
	grace      time.Duration
	preserve   bool
	hostNet    bool
	user       string
	regUser    string
	regPassEnv string
	secretEnv  []string
}

func (f *specFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.key, "idempotency-key", "", "submit at most once for this key")
	fl.StringArrayVar(&f.labels, "label", nil, "label KEY=VALUE (repeatable)")
	fl.Int32Var(&f.priority, "priority", 0, "priority, -1000..1000 (higher first)")
	fl.DurationVar(&f.timeout, "timeout", 0, "execution timeout (0: node default)")
	fl.DurationVar(&f.startup, "startup-timeout", 0, "startup timeout: queue + image + outputs (0: node default)")
	fl.DurationVar(&f.grace, "grace", 0, "SIGTERM to SIGKILL grace period (0: node default)")
	fl.BoolVar(&f.preserve, "preserve-outputs", false, "keep existing files in output channels")
	fl.BoolVar(&f.hostNet, "host-network", false, "run in the host network (if the node allows it)")
	fl.StringVar(&f.user, "user", "", "run as uid[:gid]")
	fl.StringVar(&f.regUser, "registry-username", "", "registry user for pulling the image")
	fl.StringVar(&f.regPassEnv, "registry-password-env", "", "name of the environment variable holding the registry password")
	fl.StringArrayVar(&f.secretEnv, "secret-env", nil, "set env var NAME from the node secret SECRET: NAME=SECRET (repeatable; the node reads the value, the task stores only the name)")
}

func (f *specFlags) request(cmd *cobra.Command, path string) (*pcnodev1.SubmitTaskRequest, error) {
	s, err := readTaskFile(cmd, path)
	if err != nil {
		return nil, err
	}
	for _, l := range f.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return nil, fmt.Errorf("--label %q: want KEY=VALUE", l)
		}
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[k] = v
	}
	for _, se := range f.secretEnv {
		name, secret, ok := strings.Cut(se, "=")
		if !ok || name == "" || secret == "" {
			return nil, fmt.Errorf("--secret-env %q: want NAME=SECRET (a variable name and the name of a node secret)", se)
		}
		// Replaces the task file's entry of that name, or adds one.
		s.Env = slices.DeleteFunc(s.Env, func(e *pcnodev1.EnvVar) bool { return e.GetName() == name })
		s.Env = append(s.Env, &pcnodev1.EnvVar{Name: name, Secret: secret})
	}
	s.Priority, s.PreserveOutputs, s.User = f.priority, f.preserve, f.user
	s.ExecutionTimeout, s.StartupTimeout, s.StopGracePeriod = durationOrNil(f.timeout), durationOrNil(f.startup), durationOrNil(f.grace)
	if f.hostNet {
		s.Network = pcnodev1.NetworkMode_NETWORK_MODE_HOST
	}
	if f.regUser != "" || f.regPassEnv != "" {
		s.RegistryAuth = &pcnodev1.RegistryAuth{Username: f.regUser, Password: os.Getenv(f.regPassEnv)}
	}
	return &pcnodev1.SubmitTaskRequest{Spec: s, IdempotencyKey: f.key}, nil
}

func newSubmitCmd() *cobra.Command {
	var f specFlags
	cmd := &cobra.Command{
		Use:   "submit TASK.json",
		Short: "Queue a Kaapana task.json on the node and print its id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := f.request(cmd, args[0])
			if err != nil {
				return err
			}
			return withClient(cmd, func(ctx context.Context, c *nodeConn) error {
				resp, err := c.tasks.SubmitTask(ctx, req)
				if err != nil {
					return err
				}
				if jsonOutput(cmd) {
					return printJSON(cmd.OutOrStdout(), resp)
				}
				for _, w := range resp.GetTask().GetWarnings() {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
				}
				if resp.GetExisting() {
					fmt.Fprintln(cmd.ErrOrStderr(), "existing task for this idempotency key")
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), resp.GetTask().GetId())
				return err
			})
		},
	}
	f.register(cmd)
	return cmd
}

// exitCodeError makes the CLI exit with a task's exit status.
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// taskExitCode is the CLI exit status for a finished task: its container's
// exit code, or 1 (failed without one) or 130 (cancelled) when it has none.
func taskExitCode(t *pcnodev1.Task) int {
	switch {
	case t.GetState() == pcnodev1.TaskState_TASK_STATE_SUCCEEDED:
		return 0
	case t.GetExitCode() != 0:
		return int(t.GetExitCode())
	case t.GetState() == pcnodev1.TaskState_TASK_STATE_CANCELLED:
		return 130
	}
	return 1
}

func newRunCmd() *cobra.Command {
	var f specFlags
	var attach string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "run TASK.json | run --attach ID",
		Short: "Submit a task (or attach to one) and follow it to the end; exit status is the task's exit code",
		Args: func(cmd *cobra.Command, args []string) error {
			if (attach == "") == (len(args) == 1) && len(args) <= 1 {
				return nil
			}
			return fmt.Errorf("give TASK.json or --attach ID")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &pcnodev1.RunTaskRequest{IncludeLogs: !quiet}
			if attach != "" {
				req.Target = &pcnodev1.RunTaskRequest_TaskId{TaskId: attach}
			} else {
				sub, err := f.request(cmd, args[0])
				if err != nil {
					return err
				}
				req.Target = &pcnodev1.RunTaskRequest_Submit{Submit: sub}
			}
			var final *pcnodev1.Task
			err := withClient(cmd, func(ctx context.Context, c *nodeConn) error {
				var err error
				final, err = c.run(ctx, req, func(ev *pcnodev1.TaskEvent) error {
					return printEvent(cmd, ev)
				})
				return err
			})
			if errors.Is(err, io.ErrUnexpectedEOF) || (err == nil && final == nil) {
				return fmt.Errorf("the node ended the stream before the task finished: follow it with pcnode-cli run --attach ID or pcnode-cli get ID")
			}
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				if err := printJSON(cmd.OutOrStdout(), final); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "task %s %s: %s\n", final.GetId(), stateName(final.GetState()), final.GetMessage())
			}
			if code := taskExitCode(final); code != 0 {
				return &exitCodeError{code: code}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&attach, "attach", "", "follow an existing task by id")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not print the task's logs")
	return cmd
}

// printEvent writes logs to stdout/stderr and progress to stderr.
func printEvent(cmd *cobra.Command, ev *pcnodev1.TaskEvent) error {
	switch e := ev.GetEvent().(type) {
	case *pcnodev1.TaskEvent_Log:
		w := cmd.OutOrStdout()
		if e.Log.GetStream() == pcnodev1.LogStream_LOG_STREAM_STDERR {
			w = cmd.ErrOrStderr()
		}
		if jsonOutput(cmd) {
			return nil
		}
		_, err := w.Write(e.Log.GetData())
		return err
	case *pcnodev1.TaskEvent_StateChange:
		if !jsonOutput(cmd) {
			fmt.Fprintf(cmd.ErrOrStderr(), "[pcnode] %s %s\n", e.StateChange.GetId(), stateName(e.StateChange.GetState()))
		}
	case *pcnodev1.TaskEvent_ImageProgress:
		if !jsonOutput(cmd) && e.ImageProgress.GetStatus() == "done" {
			fmt.Fprintf(cmd.ErrOrStderr(), "[pcnode] image %s: %s\n", e.ImageProgress.GetReference(), e.ImageProgress.GetStatus())
		}
	case *pcnodev1.TaskEvent_OutputManifest:
		if !jsonOutput(cmd) {
			m := e.OutputManifest
			fmt.Fprintf(cmd.ErrOrStderr(), "[pcnode] output %s: %d files, %s\n", m.GetName(), m.GetFileCount(), humanBytes(m.GetTotalBytes()))
		}
	case *pcnodev1.TaskEvent_LogGap:
		printGap(cmd.ErrOrStderr(), e.LogGap)
	}
	return nil
}

// printGap tells the user which log entries were lost to rotation.
func printGap(w io.Writer, g *pcnodev1.LogGap) {
	n := g.GetLastMissedSequence() - g.GetFirstMissedSequence() + 1
	fmt.Fprintf(w, "[pcnode] log entries %d to %d (%d) were rotated away before they could be read; raise [logs] max_file_size or max_files to keep more\n",
		g.GetFirstMissedSequence(), g.GetLastMissedSequence(), n)
}

func stateName(s pcnodev1.TaskState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "TASK_STATE_"))
}

func reasonName(r pcnodev1.TaskReason) string {
	if r == pcnodev1.TaskReason_TASK_REASON_UNSPECIFIED {
		return ""
	}
	return strings.TrimPrefix(r.String(), "TASK_REASON_")
}

func newLogsCmd() *cobra.Command {
	var follow bool
	var tail int64
	var after uint64
	var since time.Duration
	var stream string
	cmd := &cobra.Command{
		Use:   "logs ID",
		Short: "Print a task's logs (stdout to stdout, stderr to stderr)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &pcnodev1.StreamLogsRequest{TaskId: args[0], Follow: follow, TailLines: tail, AfterSequence: after}
			if since > 0 {
				req.Since = timestampAgo(since)
			}
			switch stream {
			case "", "both":
			case "stdout":
				req.Stream = pcnodev1.LogStream_LOG_STREAM_STDOUT
			case "stderr":
				req.Stream = pcnodev1.LogStream_LOG_STREAM_STDERR
			default:
				return fmt.Errorf("--stream: want stdout, stderr or both")
			}
			return withClient(cmd, func(ctx context.Context, c *nodeConn) error {
				s, err := c.tasks.StreamLogs(ctx, req)
				if err != nil {
					return err
				}
				for {
					resp, err := s.Recv()
					if err == io.EOF {
						return nil
					}
					if err != nil {
						return err
					}
					if g := resp.GetGap(); g != nil {
						if jsonOutput(cmd) {
							if err := printJSONLine(cmd.OutOrStdout(), resp); err != nil {
								return err
							}
						}
						printGap(cmd.ErrOrStderr(), g)
					}
					for _, e := range resp.GetEntries() {
						if jsonOutput(cmd) {
							if err := printJSONLine(cmd.OutOrStdout(), e); err != nil {
								return err
							}
							continue
						}
						w := cmd.OutOrStdout()
						if e.GetStream() == pcnodev1.LogStream_LOG_STREAM_STDERR {
							w = cmd.ErrOrStderr()
						}
						if _, err := w.Write(e.GetData()); err != nil {
							return err
						}
					}
				}
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "keep printing until the task ends")
	fl.Int64Var(&tail, "tail", 0, "only the last N entries (0: all)")
	fl.Uint64Var(&after, "after-seq", 0, "only entries after this sequence number")
	fl.DurationVar(&since, "since", 0, "only entries newer than this (e.g. 10m)")
	fl.StringVar(&stream, "stream", "both", "stdout, stderr or both")
	return cmd
}

func newGetCmd() *cobra.Command {
	var outputs bool
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show one task",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, func(ctx context.Context, c *nodeConn) error {
				resp, err := c.tasks.GetTask(ctx, &pcnodev1.GetTaskRequest{TaskId: args[0]})
				if err != nil {
					return err
				}
				var mans *pcnodev1.GetTaskOutputsResponse
				if outputs {
					if mans, err = allOutputs(ctx, c, args[0]); err != nil {
						return err
					}
				}
				if jsonOutput(cmd) {
					if err := printJSON(cmd.OutOrStdout(), resp.GetTask()); err != nil {
						return err
					}
					if mans != nil {
						return printJSON(cmd.OutOrStdout(), mans)
					}
					return nil
				}
				printTask(cmd.OutOrStdout(), resp.GetTask())
				printManifests(cmd.OutOrStdout(), mans.GetManifests())
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&outputs, "outputs", false, "also list every output file with size and sha256")
	return cmd
}

// allOutputs follows GetTaskOutputs' pages and joins them: a channel cut
// across pages comes back as one manifest.
func allOutputs(ctx context.Context, c *nodeConn, id string) (*pcnodev1.GetTaskOutputsResponse, error) {
	all := &pcnodev1.GetTaskOutputsResponse{}
	req := &pcnodev1.GetTaskOutputsRequest{TaskId: id}
	for {
		resp, err := c.tasks.GetTaskOutputs(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, m := range resp.GetManifests() {
			if n := len(all.Manifests); n > 0 && all.Manifests[n-1].GetName() == m.GetName() {
				all.Manifests[n-1].Files = append(all.Manifests[n-1].Files, m.GetFiles()...)
				continue
			}
			all.Manifests = append(all.Manifests, m)
		}
		if resp.GetNextPageToken() == "" {
			return all, nil
		}
		if resp.GetNextPageToken() == req.GetPageToken() {
			return nil, fmt.Errorf("GetTaskOutputs returned the same page token twice")
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// printManifests writes every output file of each manifest: sha256, size
// (right-aligned), path (quoted when it holds control characters, so a
// hostile name cannot forge lines).
func printManifests(w io.Writer, mans []*pcnodev1.OutputManifest) {
	for _, m := range mans {
		fmt.Fprintf(w, "\noutput %s (%s): %d files, %s\n", m.GetName(), printable(m.GetHostPath()), m.GetFileCount(), humanBytes(m.GetTotalBytes()))
		width := 0
		for _, f := range m.GetFiles() {
			width = max(width, len(humanBytes(f.GetSizeBytes())))
		}
		for _, f := range m.GetFiles() {
			fmt.Fprintf(w, "  %s  %*s  %s\n", f.GetSha256(), width, humanBytes(f.GetSizeBytes()), printable(f.GetPath()))
		}
	}
}

// printable is s, or s quoted when it holds a control character (a tab
// would break a table's columns, a newline or escape forge lines): every
// string from the node that a table shows goes through it.
func printable(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return quote(s)
		}
	}
	return s
}

// printTask writes one task as "key: value" lines.
func printTask(w io.Writer, t *pcnodev1.Task) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", printable(k), printable(v))
		}
	}
	row("id", t.GetId())
	row("name", t.GetSpec().GetName())
	row("image", t.GetSpec().GetImage())
	row("digest", t.GetImageDigest())
	row("template", t.GetInstance().GetTemplateIdentifier())
	row("state", stateName(t.GetState()))
	row("reason", reasonName(t.GetReason()))
	row("message", t.GetMessage())
	if t.GetStartTime() != nil && t.GetFinishTime() != nil {
		row("exit code", fmt.Sprint(t.GetExitCode()))
	}
	row("created", humanTime(t.GetCreateTime().AsTime()))
	if t.GetStartTime() != nil {
		row("started", humanTime(t.GetStartTime().AsTime()))
	}
	if t.GetFinishTime() != nil {
		row("finished", humanTime(t.GetFinishTime().AsTime()))
	}
	if t.GetStartTime() != nil {
		row("ran for", taskDuration(t))
	}
	row("submitted by", t.GetSubmittedBy())
	r := t.GetInstance().GetResources()
	if r != nil {
		row("requests", fmt.Sprintf("cpu %s, memory %s, gpus %d", humanCPU(r.GetRequests().GetCpuMillis()), humanBytes(r.GetRequests().GetMemoryBytes()), r.GetRequests().GetGpus()))
		row("limits", fmt.Sprintf("cpu %s, memory %s, gpus %d", humanCPU(r.GetLimits().GetCpuMillis()), humanBytes(r.GetLimits().GetMemoryBytes()), r.GetLimits().GetGpus()))
	}
	if u := t.GetUsage(); u != nil {
		row("usage", fmt.Sprintf("peak memory %s, cpu time %s", humanBytes(u.GetPeakMemoryBytes()), humanDuration(u.GetCpuTime().AsDuration())))
	}
	for _, g := range t.GetAllocation().GetGpus() {
		row("gpu", fmt.Sprintf("%d %s", g.GetIndex(), g.GetUuid()))
	}
	for _, o := range t.GetOutputs() {
		row("output "+o.GetName(), fmt.Sprintf("%d files, %s", o.GetFileCount(), humanBytes(o.GetTotalBytes())))
	}
	for _, w := range t.GetWarnings() {
		row("warning", w)
	}
	tw.Flush()
}

func newListCmd() *cobra.Command {
	var states, labels []string
	var limit int32
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tasks, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &pcnodev1.ListTasksRequest{PageSize: limit, Labels: map[string]string{}}
			for _, s := range states {
				v, ok := pcnodev1.TaskState_value["TASK_STATE_"+strings.ToUpper(s)]
				if !ok || v == 0 {
					return fmt.Errorf("--state %q: want queued, preparing, running, succeeded, failed or cancelled", s)
				}
				req.States = append(req.States, pcnodev1.TaskState(v))
			}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok {
					return fmt.Errorf("--label %q: want KEY=VALUE", l)
				}
				req.Labels[k] = v
			}
			return withClient(cmd, func(ctx context.Context, c *nodeConn) error {
				var tasks []*pcnodev1.Task
				for {
					resp, err := c.tasks.ListTasks(ctx, req)
					if err != nil {
						return err
					}
					tasks = append(tasks, resp.GetTasks()...)
					if !all || resp.GetNextPageToken() == "" {
						break
					}
					req.PageToken = resp.GetNextPageToken()
				}
				if jsonOutput(cmd) {
					return printJSON(cmd.OutOrStdout(), &pcnodev1.ListTasksResponse{Tasks: tasks})
				}
				printTaskTable(cmd.OutOrStdout(), tasks)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&states, "state", nil, "only tasks in this state (repeatable)")
	fl.StringArrayVar(&labels, "label", nil, "only tasks with label KEY=VALUE (repeatable)")
	fl.Int32Var(&limit, "limit", 100, "tasks per page (max 1000)")
	fl.BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

func newCancelCmd() *cobra.Command {
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a task (SIGTERM, then SIGKILL after the grace period)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, func(ctx context.Context, c *nodeConn) error {
				resp, err := c.tasks.CancelTask(ctx, &pcnodev1.CancelTaskRequest{TaskId: args[0], GracePeriod: durationOrNil(grace)})
				if err != nil {
					return err
				}
				if jsonOutput(cmd) {
					return printJSON(cmd.OutOrStdout(), resp.GetTask())
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", resp.GetTask().GetId(), stateName(resp.GetTask().GetState()))
				return err
			})
		},
	}
	cmd.Flags().DurationVar(&grace, "grace", 0, "grace period (0: the task's or node's; cancelling a task being stopped again: SIGKILL now, or this grace if shorter)")
	return cmd
}
