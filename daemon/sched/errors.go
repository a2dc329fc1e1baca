package sched

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNeverFits is returned when a task's requests exceed what this node
	// could ever give it: its allocatable CPU or memory, or the number of
	// GPUs of its inventory (healthy or not) that match the task's selector.
	// The error is a *FitError.
	ErrNeverFits = errors.New("can never fit this node")
	// ErrDuplicate is returned when a task id is already queued or running.
	ErrDuplicate = errors.New("task already known to the scheduler")
	// ErrInvalid is returned when a request, configuration or GPU list is
	// malformed: an empty id or uuid, a negative quantity, a repeated GPU.
	ErrInvalid = errors.New("invalid")
	// ErrUnknownGPU is returned when a GPU uuid is not in the inventory.
	ErrUnknownGPU = errors.New("unknown GPU")
	// ErrGPUConflict is returned by Restore when a GPU is already held by
	// another task.
	ErrGPUConflict = errors.New("GPU already held by another task")
)

// FitError says why a request does not fit, with the numbers. It unwraps to
// ErrNeverFits when the request can never fit this node.
type FitError struct {
	// ID is the task's id (may be empty for dry runs).
	ID string
	// Requested is what the task asks for.
	Requested Resources
	// Available is what it was measured against: allocatable for a
	// never-fits error, free for a does-not-fit-now answer. Available.GPUs
	// counts the GPUs that could be given to this task: for a never-fits
	// error every GPU of the inventory matching its selector, whatever its
	// health; for "now", the healthy matching ones no task holds.
	Available Resources
	// GPUMinMemoryBytes and GPUModel repeat the task's GPU selector.
	GPUMinMemoryBytes int64
	GPUModel          string
	// Never is true when the request exceeds the node itself, not just what
	// is free now.
	Never bool
}

// Error lists every resource that falls short, with both numbers.
func (e *FitError) Error() string {
	var b strings.Builder
	if e.ID != "" {
		fmt.Fprintf(&b, "task %q ", e.ID)
	} else {
		b.WriteString("task ")
	}
	if e.Never {
		b.WriteString("can never fit this node: ")
	} else {
		b.WriteString("does not fit now: ")
	}
	b.WriteString(strings.Join(e.shortfalls(), "; "))
	return b.String()
}

// Unwrap returns ErrNeverFits when the request can never fit.
func (e *FitError) Unwrap() error {
	if e.Never {
		return ErrNeverFits
	}
	return nil
}

func (e *FitError) shortfalls() []string {
	what := "free"
	if e.Never {
		what = "allocatable"
	}
	var out []string
	r, a := e.Requested, e.Available
	if r.MilliCPU > a.MilliCPU {
		out = append(out, fmt.Sprintf("cpu %s requested, %s %s", formatMilliCPU(r.MilliCPU), formatMilliCPU(a.MilliCPU), what))
	}
	if r.MemoryBytes > a.MemoryBytes {
		out = append(out, fmt.Sprintf("memory %s requested, %s %s", formatBytes(r.MemoryBytes), formatBytes(a.MemoryBytes), what))
	}
	if r.GPUs > a.GPUs {
		kind := "GPUs on this node"
		if !e.Never {
			kind = "free healthy GPUs"
		}
		sel := selectorString(e.GPUMinMemoryBytes, e.GPUModel)
		if sel != "" {
			kind += " matching " + sel
		}
		out = append(out, fmt.Sprintf("gpus %d requested, %d %s", r.GPUs, a.GPUs, kind))
	}
	return out
}

func selectorString(minMem int64, model string) string {
	var parts []string
	if model != "" {
		parts = append(parts, fmt.Sprintf("model %q", model))
	}
	if minMem > 0 {
		parts = append(parts, "memory >= "+formatBytes(minMem))
	}
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
