package sched

import (
	"fmt"
	"strconv"
)

// Resources is a quantity of node resources in plain integer units.
type Resources struct {
	// MilliCPU is CPU in thousandths of a core (1000 = one core).
	MilliCPU int64
	// MemoryBytes is memory in bytes.
	MemoryBytes int64
	// GPUs is a number of whole GPUs.
	GPUs int
}

// Defaults are the requests given to a task that requests nothing.
type Defaults struct {
	// MilliCPU is used when a task requests no CPU.
	MilliCPU int64
	// MemoryBytes is used when a task requests no memory.
	MemoryBytes int64
}

// What a task that requests nothing is given unless the daemon's configuration
// says otherwise: one core and 1 GiB.
const (
	DefaultMilliCPU    int64 = 1000
	DefaultMemoryBytes int64 = 1 << 30
)

// ApplyDefaults returns req with each unset (zero) CPU or memory request
// replaced by the default. GPUs are never defaulted: a task gets GPUs only when
// it asks for them.
func ApplyDefaults(req Resources, d Defaults) Resources {
	if req.MilliCPU == 0 {
		req.MilliCPU = d.MilliCPU
	}
	if req.MemoryBytes == 0 {
		req.MemoryBytes = d.MemoryBytes
	}
	return req
}

// Allocatable returns capacity minus reserved, per resource, never below zero.
func Allocatable(capacity, reserved Resources) Resources {
	return Resources{
		MilliCPU:    max(capacity.MilliCPU-reserved.MilliCPU, 0),
		MemoryBytes: max(capacity.MemoryBytes-reserved.MemoryBytes, 0),
		GPUs:        max(capacity.GPUs-reserved.GPUs, 0),
	}
}

// String formats r for people:
// "cpu 1500m, memory 2147483648 bytes (2.0 GiB), gpus 1".
func (r Resources) String() string {
	return fmt.Sprintf("cpu %s, memory %s, gpus %d", formatMilliCPU(r.MilliCPU), formatBytes(r.MemoryBytes), r.GPUs)
}

func (r Resources) add(o Resources) Resources {
	return Resources{r.MilliCPU + o.MilliCPU, r.MemoryBytes + o.MemoryBytes, r.GPUs + o.GPUs}
}

func (r Resources) sub(o Resources) Resources {
	return Resources{r.MilliCPU - o.MilliCPU, r.MemoryBytes - o.MemoryBytes, r.GPUs - o.GPUs}
}

// cpuMemFit reports whether r's CPU and memory fit in avail.
func (r Resources) cpuMemFit(avail Resources) bool {
	return r.MilliCPU <= avail.MilliCPU && r.MemoryBytes <= avail.MemoryBytes
}

func (r Resources) validate() error {
	if r.MilliCPU < 0 || r.MemoryBytes < 0 || r.GPUs < 0 {
		return fmt.Errorf("%w: negative quantity (%s)", ErrInvalid, r)
	}
	return nil
}

// formatMilliCPU writes milli-cores as Kubernetes does ("1500m").
func formatMilliCPU(m int64) string {
	return strconv.FormatInt(m, 10) + "m"
}

// formatBytes writes the exact byte count and, when it helps, a binary-unit
// rounding: "8589934592 bytes (8.0 GiB)".
func formatBytes(n int64) string {
	const unit = 1024
	exact := strconv.FormatInt(n, 10) + " bytes"
	if n < unit && n > -unit {
		return exact
	}
	v := float64(n)
	suffixes := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for (v >= unit || v <= -unit) && i < len(suffixes)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%s (%.1f %s)", exact, v, suffixes[i])
}
