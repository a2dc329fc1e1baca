package sched

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Health is a GPU's health as the scheduler knows it. Only Healthy GPUs are
// assigned.
type Health int

const (
	// Unknown: health monitoring is not running or has not reported. The
	// zero value, so a GPU is never assigned by accident.
	Unknown Health = iota
	// Healthy: assignable.
	Healthy
	// Unhealthy: failed (XID, ECC); not assigned until healthy again.
	Unhealthy
)

// String returns "unknown", "healthy" or "unhealthy".
func (h Health) String() string {
	switch h {
	case Unknown:
		return "unknown"
	case Healthy:
		return "healthy"
	case Unhealthy:
		return "unhealthy"
	}
	return fmt.Sprintf("Health(%d)", int(h))
}

// GPU is one GPU of the node as far as scheduling cares.
type GPU struct {
	// Index is the NVML index.
	Index int
	// UUID identifies the GPU ("GPU-…"); it is what allocations record.
	UUID string
	// Model is the product name, e.g. "NVIDIA A100-SXM4-40GB".
	Model string
	// MemoryBytes is the GPU's total memory; 0 when unknown.
	MemoryBytes int64
	// NUMANode is the NUMA node the GPU is attached to; -1 when unknown.
	NUMANode int
	// Health decides whether the GPU may be assigned.
	Health Health
}

// matches reports whether g satisfies a task's GPU selector.
func (g *GPU) matches(minMem int64, model string) bool {
	if minMem > 0 && g.MemoryBytes < minMem {
		return false
	}
	if model != "" && !strings.Contains(strings.ToLower(g.Model), strings.ToLower(model)) {
		return false
	}
	return true
}

// validateGPUs checks a GPU list and returns a copy sorted by index, then uuid.
func validateGPUs(gpus []GPU) ([]GPU, error) {
	out := slices.Clone(gpus)
	seen := make(map[string]bool, len(out))
	for i := range out {
		g := &out[i]
		if g.UUID == "" {
			return nil, fmt.Errorf("%w: GPU at index %d has no uuid", ErrInvalid, g.Index)
		}
		if seen[g.UUID] {
			return nil, fmt.Errorf("%w: GPU %s listed twice", ErrInvalid, g.UUID)
		}
		seen[g.UUID] = true
		if g.Index < 0 || g.MemoryBytes < 0 {
			return nil, fmt.Errorf("%w: GPU %s has a negative index or memory", ErrInvalid, g.UUID)
		}
		if g.NUMANode < -1 {
			g.NUMANode = -1
		}
	}
	slices.SortFunc(out, func(a, b GPU) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), strings.Compare(a.UUID, b.UUID))
	})
	return out, nil
}

// chooseGPUs picks n GPUs out of candidates (sorted by index). When n > 1 and
// some NUMA node has at least n candidates, it picks from the NUMA node with
// the fewest candidates that still suffices (ties: the lowest first index),
// lowest indices first; otherwise the n lowest indices. It returns nil when
// there are fewer than n candidates.
func chooseGPUs(candidates []*GPU, n int) []*GPU {
	if n <= 0 || len(candidates) < n {
		return nil
	}
	if n == 1 {
		return candidates[:1]
	}
	// Candidates are in index order, so the groups come out ordered by
	// their first index; a strict "<" keeps the lowest on ties.
	var (
		best     []*GPU
		groups   [][]*GPU
		groupFor = map[int]int{}
	)
	for _, g := range candidates {
		if g.NUMANode < 0 {
			continue
		}
		i, ok := groupFor[g.NUMANode]
		if !ok {
			i = len(groups)
			groupFor[g.NUMANode] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], g)
	}
	for _, grp := range groups {
		if len(grp) >= n && (best == nil || len(grp) < len(best)) {
			best = grp
		}
	}
	if best != nil {
		return best[:n]
	}
	return candidates[:n]
}
