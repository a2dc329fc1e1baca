package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pcnode/pcnode/daemon/spec"
)

// resolveReport is resolve's result; its JSON form is stable.
type resolveReport struct {
	Instance *spec.Instance `json:"instance"`
	Problems []finding      `json:"problems"`
	Warnings []finding      `json:"warnings"`
}

func newResolveCmd() *cobra.Command {
	var pcPath string
	cmd := &cobra.Command{
		Use:   "resolve --pc PCFILE TASK.json",
		Short: "Merge a task.json with its template offline and compute its resources",
		Long: "resolve does offline what pcnoded does before running a task: it substitutes {{ env.NAME }}\n" +
			"placeholders in TASK.json from the environment, merges the task with its template from\n" +
			"PCFILE (not needed for a task with an inline template), measures the scale rules on the\n" +
			"input directories, and prints the task instance with its computed resources, or every\n" +
			"problem found.\n\n" +
			"Exit status: 0 resolved, 1 problems found, 2 usage error.",
		Args: exactArgs(1, "one TASK.json"),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := outputFormat(cmd)
			if err != nil {
				return err
			}
			rep, err := resolveFile(cmd, args[0], pcPath)
			if err != nil {
				return err
			}
			rep.Problems = nonNil(rep.Problems)
			rep.Warnings = nonNil(rep.Warnings)
			if rep.Instance != nil {
				normalizeInstance(rep.Instance)
			}
			if format == formatJSON {
				if err := writeJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				writeResolveText(cmd.OutOrStdout(), rep)
			}
			if len(rep.Problems) > 0 {
				return &reportedError{code: exitInvalid}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pcPath, "pc", "", "processing-container.json holding the task's template")
	return cmd
}

func resolveFile(cmd *cobra.Command, taskPath, pcPath string) (*resolveReport, error) {
	rep := &resolveReport{}
	data, err := os.ReadFile(taskPath)
	if err != nil {
		return nil, err
	}
	task, warns, err := spec.ParseTask(data, os.LookupEnv)
	for _, w := range warns {
		rep.Warnings = append(rep.Warnings, finding{Field: w.Field, Description: w.Description})
	}
	for _, p := range problemsOf(err) {
		rep.Problems = append(rep.Problems, finding{Field: p.Field, Description: p.Description})
	}
	var pc *spec.ProcessingContainer
	if pcPath != "" {
		var pcWarns []spec.Warning
		var pcProblems spec.Problems
		pc, pcWarns, pcProblems = loadPC(pcPath)
		for _, w := range pcWarns {
			rep.Warnings = append(rep.Warnings, finding{File: pcPath, Field: w.Field, Description: w.Description})
		}
		for _, p := range pcProblems {
			rep.Problems = append(rep.Problems, finding{File: pcPath, Field: p.Field, Description: p.Description})
		}
	}
	if task == nil || len(rep.Problems) > 0 {
		return rep, nil
	}
	inst, warns, err := spec.Resolve(cmd.Context(), pc, task, spec.OSFS{})
	for _, w := range warns {
		rep.Warnings = append(rep.Warnings, finding{Field: w.Field, Description: w.Description})
	}
	var ps spec.Problems
	switch {
	case errors.As(err, &ps):
		var inPC spec.Problems
		if pc != nil {
			inPC = pc.Validate()
		}
		for _, p := range ps {
			f := finding{Field: p.Field, Description: p.Description}
			if slices.Contains(inPC, p) {
				f.File = pcPath
			}
			rep.Problems = append(rep.Problems, f)
		}
	case err != nil:
		return nil, err
	default:
		rep.Instance = inst
	}
	return rep, nil
}

// normalizeInstance makes empty lists marshal as [].
func normalizeInstance(in *spec.Instance) {
	in.Env = nonNil(in.Env)
	in.Command = nonNil(in.Command)
	in.Inputs = nonNil(in.Inputs)
	in.Outputs = nonNil(in.Outputs)
	in.ScaleResults = nonNil(in.ScaleResults)
}

func writeResolveText(w io.Writer, rep *resolveReport) {
	if len(rep.Problems) > 0 {
		fmt.Fprintf(w, "%d problem(s):\n", len(rep.Problems))
		for _, p := range rep.Problems {
			fmt.Fprintf(w, "  %s\n", findingText(p))
		}
	}
	if in := rep.Instance; in != nil {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "image:\t%s\n", in.Image)
		fmt.Fprintf(tw, "template:\t%s\n", in.TemplateIdentifier)
		cmdline := "(the image's entrypoint)"
		if len(in.Command) > 0 {
			cmdline = shellJoin(in.Command)
		}
		fmt.Fprintf(tw, "command:\t%s\n", cmdline)
		tw.Flush()
		fmt.Fprintf(w, "env:\n")
		if len(in.Env) == 0 {
			fmt.Fprintf(w, "  (none)\n")
		}
		for _, e := range in.Env {
			if e.Secret != "" {
				fmt.Fprintf(w, "  %s=(node secret %s, read when the container is created)\n", e.Name, e.Secret)
				continue
			}
			fmt.Fprintf(w, "  %s=%s\n", e.Name, e.Value)
		}
		for _, list := range []struct {
			name   string
			mounts []spec.Mount
		}{{"inputs", in.Inputs}, {"outputs", in.Outputs}} {
			fmt.Fprintf(w, "%s:\n", list.name)
			if len(list.mounts) == 0 {
				fmt.Fprintf(w, "  (none)\n")
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			for _, m := range list.mounts {
				mode := "rw"
				if m.ReadOnly {
					mode = "ro"
				}
				fmt.Fprintf(tw, "  %s\t%s\t-> %s\t(%s)\n", m.Name, m.HostPath, m.MountedPath, mode)
			}
			tw.Flush()
		}
		fmt.Fprintf(w, "resources:\n")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  \tmemory\tcpu\tgpus\n")
		for _, r := range []struct {
			name string
			l    spec.ResourceList
		}{{"requests", in.Resources.Requests}, {"limits", in.Resources.Limits}} {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\n", r.name, memoryText(r.l.MemoryBytes), cpuText(r.l.CPUMillis), r.l.GPUs)
		}
		tw.Flush()
		if len(in.ScaleResults) > 0 {
			fmt.Fprintf(w, "scale rules:\n")
		}
		for _, s := range in.ScaleResults {
			r := s.Rule
			effect := "no change"
			if s.Applied {
				effect = "raised the memory " + string(r.Type)
			}
			fmt.Fprintf(w, "  %s: %s of files matching glob %q and regex %q under %q: %s x %d = %s (%s)\n",
				s.Channel, r.Mode, r.TargetGlob, r.TargetRegex, displayDir(r.TargetDir), memoryText(s.MeasuredBytes), r.ScaleFactor,
				memoryText(s.ComputedBytes), effect)
		}
	}
	if len(rep.Warnings) > 0 {
		fmt.Fprintf(w, "warnings:\n")
		for _, p := range rep.Warnings {
			fmt.Fprintf(w, "  %s\n", findingText(p))
		}
	}
}

func displayDir(d string) string {
	if d == "" {
		return "."
	}
	return d
}

// memoryText writes a byte count for people with the exact count beside
// it, since resolve is where scale rules are checked: "50 MiB (52428800
// bytes)", "512 B".
func memoryText(n int64) string {
	if n == 0 {
		return "-"
	}
	if n < 1024 {
		return humanBytes(n)
	}
	return fmt.Sprintf("%s (%d bytes)", humanBytes(n), n)
}

func cpuText(n int64) string {
	if n == 0 {
		return "-"
	}
	return humanCPU(n)
}

// shellJoin writes argv for people, quoting arguments that need it.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
