package gpu

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
)

// StaticGPU is one GPU declared in the daemon's config for the static
// backend.
type StaticGPU struct {
	// Index is the GPU's index; unique, >= 0.
	Index int `toml:"index"`
	// UUID identifies the GPU; unique, a valid CDI device name (see
	// ValidateUUID).
	UUID string `toml:"uuid"`
	// Model is the product name (free text).
	Model string `toml:"model"`
	// MemoryBytes is the GPU's total memory; 0 means not declared.
	MemoryBytes int64 `toml:"memory_bytes"`
	// NUMANode is the NUMA node; nil means not declared.
	NUMANode *int `toml:"numa_node"`
	// Minor is the device minor number (/dev/nvidia<Minor>); nil means the
	// same as Index.
	Minor *int `toml:"minor"`
	// PCIBusID is the PCI address (optional).
	PCIBusID string `toml:"pci_bus_id"`
	// ComputeCapability is e.g. "8.0" (optional).
	ComputeCapability string `toml:"compute_capability"`
	// Readings reported as current (optional; nil: not reported), for
	// tests and dashboards of nodes without NVML.
	MemoryUsedBytes     *int64 `toml:"memory_used_bytes"`
	UtilizationPercent  *int   `toml:"utilization_percent"`
	TemperatureCelsius  *int   `toml:"temperature_celsius"`
	PowerDrawMilliwatts *int64 `toml:"power_draw_milliwatts"`
}

// Static is the "static" backend: GPUs declared in the config, for
// development nodes and tests. Its devices never change.
type Static struct {
	devices []Device
	system  SystemInfo
	closed  atomic.Bool
}

var _ Inventory = (*Static)(nil)

// NewStatic validates the declared GPUs and returns an inventory of them,
// ordered by index. An error wraps ErrInvalidConfig and names the GPU.
func NewStatic(gpus []StaticGPU, system SystemInfo) (*Static, error) {
	devices := make([]Device, 0, len(gpus))
	seenIndex := map[int]bool{}
	seenUUID := map[string]bool{}
	for i, g := range gpus {
		where := fmt.Sprintf("gpu %d (uuid %q)", i, g.UUID)
		if err := ValidateUUID(g.UUID); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		switch {
		case g.Index < 0:
			return nil, fmt.Errorf("%w: %s: index %d is negative", ErrInvalidConfig, where, g.Index)
		case seenIndex[g.Index]:
			return nil, fmt.Errorf("%w: %s: index %d declared twice", ErrInvalidConfig, where, g.Index)
		case seenUUID[g.UUID]:
			return nil, fmt.Errorf("%w: %s: uuid declared twice", ErrInvalidConfig, where)
		case g.MemoryBytes < 0:
			return nil, fmt.Errorf("%w: %s: memory_bytes %d is negative", ErrInvalidConfig, where, g.MemoryBytes)
		case g.NUMANode != nil && *g.NUMANode < 0:
			return nil, fmt.Errorf("%w: %s: numa_node %d is negative", ErrInvalidConfig, where, *g.NUMANode)
		case g.Minor != nil && *g.Minor < 0:
			return nil, fmt.Errorf("%w: %s: minor %d is negative", ErrInvalidConfig, where, *g.Minor)
		}
		seenIndex[g.Index] = true
		seenUUID[g.UUID] = true
		d := Device{
			Index:             g.Index,
			UUID:              g.UUID,
			Model:             g.Model,
			PCIBusID:          g.PCIBusID,
			ComputeCapability: g.ComputeCapability,
			Minor:             ptr(g.Index),
		}
		if g.Minor != nil {
			d.Minor = ptr(*g.Minor)
		}
		if g.NUMANode != nil {
			d.NUMANode = ptr(*g.NUMANode)
		}
		if g.MemoryBytes > 0 {
			d.MemoryTotalBytes = ptr(g.MemoryBytes)
		}
		d.MemoryUsedBytes = clonePtr(g.MemoryUsedBytes)
		d.UtilizationPercent = clonePtr(g.UtilizationPercent)
		d.TemperatureCelsius = clonePtr(g.TemperatureCelsius)
		d.PowerDrawMilliwatts = clonePtr(g.PowerDrawMilliwatts)
		devices = append(devices, d)
	}
	slices.SortFunc(devices, func(a, b Device) int { return a.Index - b.Index })
	return &Static{devices: devices, system: system}, nil
}

// Backend returns BackendStatic.
func (s *Static) Backend() string { return BackendStatic }

// System returns the SystemInfo given to NewStatic.
func (s *Static) System() SystemInfo { return s.system }

// Devices returns the declared GPUs. Each call returns fresh copies.
func (s *Static) Devices(ctx context.Context) ([]Device, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]Device, len(s.devices))
	for i, d := range s.devices {
		out[i] = d.Clone()
	}
	return out, nil
}

// Close marks the inventory closed.
func (s *Static) Close() error {
	s.closed.Store(true)
	return nil
}

// None is the "none" backend: a CPU-only node. It has no GPUs.
type None struct{}

var _ Inventory = None{}

// NewNone returns the inventory of a node without GPUs.
func NewNone() None { return None{} }

// Backend returns BackendNone.
func (None) Backend() string { return BackendNone }

// System returns an empty SystemInfo: there is no GPU driver.
func (None) System() SystemInfo { return SystemInfo{} }

// Devices returns no GPUs.
func (None) Devices(ctx context.Context) ([]Device, error) { return []Device{}, ctx.Err() }

// Close does nothing.
func (None) Close() error { return nil }
