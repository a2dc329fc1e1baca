package spec

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
)

// Limits caps what one task, template or processing-container may hold,
// and what the instance made from them may ask of the kernel and the node.
// A zero field is no cap. [DefaultLimits] are the caps a node starts with;
// the package functions ([Task.Validate], [ProcessingContainer.Validate],
// [Merge], [Resolve]) apply them, and the methods of the same names on
// Limits apply other ones.
//
// Every string that ends up in the container's argv or environment is
// also held to the kernel's own limit on one string, [MaxArgStrlen],
// whatever the Limits.
type Limits struct {
	// MaxEnvEntries is the most variables in one list: a task's env, a
	// template's env, and the env an instance runs with (the template's
	// variables and those a task adds).
	MaxEnvEntries int
	// MaxEnvChoices is the most choices of one template variable.
	MaxEnvChoices int
	// MaxCommandArgs is the most arguments of a task's or a template's command.
	MaxCommandArgs int
	// MaxChannels is the most inputs, and the most outputs, of a template or
	// of a task.
	MaxChannels int
	// MaxPatternBytes is the longest target_regex and target_glob of a scale rule.
	MaxPatternBytes int
	// MaxRegexInsts is the most instructions the compiled program of a
	// target_regex may have (regexp/syntax's Prog): it bounds both the work
	// of compiling and the cost of matching every file of a channel.
	MaxRegexInsts int
	// MaxExecBytes bounds an instance's command and environment together,
	// counted as execve counts them (see [ExecBytes]).
	MaxExecBytes int64
	// MaxLabels is the most labels of a task.
	MaxLabels int
	// MaxLabelBytes is the most bytes of a task's label keys and values together.
	MaxLabelBytes int
	// MinMemoryBytes is the smallest memory request or limit other than 0
	// (unset) that a task, template or instance may have. runc's init takes
	// about 2.5 MiB of the container's cgroup itself; the default, 6 MiB,
	// leaves the program room.
	MinMemoryBytes int64
	// MinCPUMillis and MaxCPUMillis bound a CPU limit other than 0 (a CPU
	// request the node cannot give is the scheduler's to refuse).
	MinCPUMillis, MaxCPUMillis int64
}

// MaxArgStrlen is Linux's MAX_ARG_STRLEN (32 pages of 4 KiB): the most
// bytes of one argument or one NAME=VALUE environment string that execve
// accepts, its terminating NUL included.
const MaxArgStrlen = 32 * 4096

// MaxExecBytesCeiling is the most that execve accepts for argv and envp
// together (see [ExecBytes]) under the usual 8 MiB stack limit, a quarter of
// it. A [Limits.MaxExecBytes] above it would let through what the kernel
// refuses with E2BIG.
const MaxExecBytesCeiling = 2 << 20

// DefaultLimits returns the caps a node applies unless configured
// otherwise; they are the defaults of pcnoded's [limits] section.
func DefaultLimits() Limits {
	return Limits{
		MaxEnvEntries:   1024,
		MaxEnvChoices:   256,
		MaxCommandArgs:  4096,
		MaxChannels:     64,
		MaxPatternBytes: 1024,
		MaxRegexInsts:   2000,
		MaxExecBytes:    1 << 20,
		MaxLabels:       64,
		MaxLabelBytes:   16 << 10,
		MinMemoryBytes:  6 << 20,
		MinCPUMillis:    10,
		MaxCPUMillis:    1024 * 1000,
	}
}

// ExecBytes is what argv and envp cost execve: every string with its NUL,
// plus one 8-byte pointer per string. Linux refuses (E2BIG) a total above a
// quarter of the stack limit ([MaxExecBytesCeiling] for 8 MiB).
func ExecBytes(argv, env []string) int64 {
	var n int64
	for _, list := range [][]string{argv, env} {
		for _, s := range list {
			n += int64(len(s)) + 1 + 8
		}
	}
	return n
}

// Validate is [Task.Validate] under l.
func (l Limits) Validate(t *Task) Problems {
	c := &collector{limits: l}
	validateTask(c, t)
	return c.problems
}

// ValidateProcessingContainer is [ProcessingContainer.Validate] under l.
func (l Limits) ValidateProcessingContainer(pc *ProcessingContainer) Problems {
	c := &collector{limits: l}
	validateProcessingContainer(c, pc)
	return c.problems
}

// ValidateTemplate is [TaskTemplate.Validate] under l.
func (l Limits) ValidateTemplate(t *TaskTemplate) Problems {
	c := &collector{limits: l}
	validateTemplate(c, t, "")
	return c.problems
}

// Merge is [Merge] under l.
func (l Limits) Merge(pc *ProcessingContainer, t *Task) (*Instance, []Warning, Problems) {
	return mergeWithin(l, pc, t)
}

// Resolve is [Resolve] under l.
func (l Limits) Resolve(ctx context.Context, pc *ProcessingContainer, t *Task, fsys SizeFS) (*Instance, []Warning, error) {
	return resolveWithin(ctx, l, pc, t, fsys)
}

// checkCount records a problem when a list of n items is longer than most.
func checkCount(c *collector, field string, n, most int, what, key string) {
	if most > 0 && n > most {
		c.problem(field, "has %d %s; at most %d ([limits] %s)", n, what, most, key)
	}
}

// checkExecString records a problem when s cannot be one string of argv or
// envp.
func checkExecString(c *collector, field, s, what string) {
	if len(s)+1 > MaxArgStrlen {
		c.problem(field, "%s is %d bytes; the kernel accepts at most %d in one argument or variable (MAX_ARG_STRLEN)",
			what, len(s), MaxArgStrlen-1)
	}
}

// checkResourceBounds records a memory request or limit below the floor
// and a CPU limit outside the node's bounds; 0 is unset and always
// accepted.
func checkResourceBounds(c *collector, r Resources, field string) {
	l := c.limits
	for _, list := range []struct {
		name string
		l    ResourceList
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		if m := list.l.MemoryBytes; m > 0 && m < l.MinMemoryBytes {
			c.problem(resourceField(field, list.name, ResourceMemory),
				"%d bytes is below the smallest memory %s a container can start with on this node, %s (%d bytes; [limits] min_memory)",
				m, singular(list.name), FormatBytes(l.MinMemoryBytes), l.MinMemoryBytes)
		}
		if list.name != "limits" {
			continue // a CPU request only reserves; one the node cannot give is the scheduler's to refuse
		}
		if m := list.l.CPUMillis; m > 0 && m < l.MinCPUMillis {
			c.problem(resourceField(field, list.name, ResourceCPU),
				"%s CPU is below the smallest CPU limit on this node, %s ([limits] min_cpu)",
				FormatMillis(m), FormatMillis(l.MinCPUMillis))
		}
		if m := list.l.CPUMillis; l.MaxCPUMillis > 0 && m > l.MaxCPUMillis {
			c.problem(resourceField(field, list.name, ResourceCPU),
				"%s CPU is above the largest CPU limit on this node, %s ([limits] max_cpu)",
				FormatMillis(m), FormatMillis(l.MaxCPUMillis))
		}
	}
}

func singular(list string) string {
	if list == "requests" {
		return "request"
	}
	return "limit"
}

// checkInstance checks what only the merged instance shows: the number of
// variables it runs with, its argv and env against the kernel and the
// node, and its final resources.
func checkInstance(c *collector, inst *Instance) {
	l := c.limits
	checkCount(c, "env", len(inst.Env), l.MaxEnvEntries, "variables once merged with the template's", "max_env_entries")
	env := make([]string, 0, len(inst.Env))
	var envBytes int64
	for _, e := range inst.Env {
		s := e.Name + "=" + e.Value
		env = append(env, s)
		envBytes += int64(len(s)) + 1 + 8
	}
	if total := ExecBytes(inst.Command, env); l.MaxExecBytes > 0 && total > l.MaxExecBytes {
		field := "env"
		if total-envBytes > envBytes {
			field = "command"
		}
		c.problem(field, "the command and environment the task would run with take %d bytes as execve counts them "+
			"(%d for the environment); at most %d ([limits] max_exec_bytes)", total, envBytes, l.MaxExecBytes)
	}
	for i, e := range inst.Env {
		checkExecString(c, indexField("env", i), e.Name+"="+e.Value, e.Name+"=VALUE")
	}
	checkResourceBounds(c, inst.Resources, "resources")
}

// compileTargetRegexWithin compiles a target_regex as compileTargetRegex
// does, refusing first, and cheaply, an expression longer than
// MaxPatternBytes or whose program would have more than MaxRegexInsts
// instructions.
func compileTargetRegexWithin(expr string, l Limits) (*regexp.Regexp, error) {
	if l.MaxPatternBytes > 0 && len(expr) > l.MaxPatternBytes {
		return nil, fmt.Errorf("is %d bytes; at most %d ([limits] max_regex_bytes)", len(expr), l.MaxPatternBytes)
	}
	if l.MaxRegexInsts > 0 && expr != "" {
		re, err := syntax.Parse(expr, syntax.Perl)
		if err != nil {
			return compileTargetRegex(expr) // reports the syntax error
		}
		// The estimate bounds the program from above without building it;
		// only a plausible expression is compiled to count exactly.
		if est := estimateInsts(re) + 2; est > int64(l.MaxRegexInsts)*4 { // + a program's fail and match
			return nil, fmt.Errorf("is too complex: about %d program instructions; at most %d ([limits] max_regex_insts)", est, l.MaxRegexInsts)
		}
		prog, err := syntax.Compile(re.Simplify())
		if err != nil {
			return compileTargetRegex(expr)
		}
		if n := len(prog.Inst); n > l.MaxRegexInsts {
			return nil, fmt.Errorf("is too complex: %d program instructions; at most %d ([limits] max_regex_insts)", n, l.MaxRegexInsts)
		}
	}
	return compileTargetRegex(expr)
}

// estimateInsts is an upper bound, saturating, of the instructions of
// re's compiled program; repetitions multiply their operand as Simplify
// expands them.
func estimateInsts(re *syntax.Regexp) int64 {
	const most = math.MaxInt64 / 4
	var sum int64
	for _, sub := range re.Sub {
		sum = addSat(sum, estimateInsts(sub))
	}
	switch re.Op {
	case syntax.OpLiteral:
		return int64(len(re.Rune)) + 1
	case syntax.OpRepeat:
		n := int64(re.Max)
		if n < int64(re.Min) {
			n = int64(re.Min) // x{n,} is n copies and a star
		}
		return min(most, addSat(mulSat(sum, n+1), n+1))
	case syntax.OpConcat, syntax.OpAlternate:
		return min(most, addSat(sum, int64(len(re.Sub))+1))
	}
	return min(most, addSat(sum, 2))
}
