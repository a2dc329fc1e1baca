package gpu

import (
	"context"
	"fmt"
	"regexp"
)

// Backend names, as reported by Inventory.Backend and in the API's
// Node.gpu_backend.
const (
	BackendNVML   = "nvml"
	BackendStatic = "static"
	BackendNone   = "none"
)

// Inventory lists the node's GPUs. Implementations are safe for concurrent
// use.
type Inventory interface {
	// Backend names the backend: BackendNVML, BackendStatic or BackendNone.
	Backend() string
	// System returns driver-wide facts, read once when the backend started.
	System() SystemInfo
	// Devices returns every GPU, ordered by index, with its current
	// attributes. It may return the GPUs it could identify together with an
	// error wrapping ErrDevice naming those it could not.
	Devices(ctx context.Context) ([]Device, error)
	// Close releases the backend. Devices fails with ErrClosed afterwards.
	Close() error
}

// SystemInfo is what the driver says about the node as a whole. Empty
// strings mean not available (always empty without a driver).
type SystemInfo struct {
	// DriverVersion is the NVIDIA driver version, e.g. "550.54.15".
	DriverVersion string
	// CUDAVersion is the CUDA driver API version, e.g. "12.4".
	CUDAVersion string
}

// Device is one GPU. It parallels pcnodev1.Gpu minus the daemon's own
// fields (health, holder). Pointer fields are nil and string fields empty
// when not available.
type Device struct {
	// Index is the driver's index (NVML index), 0-based.
	Index int
	// UUID identifies the GPU ("GPU-…"); always set.
	UUID string
	// Model is the product name, e.g. "NVIDIA A100-SXM4-40GB".
	Model string
	// PCIBusID is the PCI address as NVML writes it, e.g. "00000000:07:00.0".
	PCIBusID string
	// Minor is the device minor number: the GPU's device node is
	// /dev/nvidia<Minor>. Not necessarily equal to Index.
	Minor *int
	// NUMANode is the NUMA node the GPU is attached to.
	NUMANode *int
	// MemoryTotalBytes is the GPU's total memory.
	MemoryTotalBytes *int64
	// MemoryUsedBytes is the GPU's used memory.
	MemoryUsedBytes *int64
	// ComputeCapability is the CUDA compute capability, e.g. "8.0".
	ComputeCapability string
	// MIGEnabled reports whether MIG mode is currently enabled.
	MIGEnabled *bool
	// PowerDrawMilliwatts is the current power draw.
	PowerDrawMilliwatts *int64
	// PowerLimitMilliwatts is the enforced power limit.
	PowerLimitMilliwatts *int64
	// TemperatureCelsius is the GPU core temperature.
	TemperatureCelsius *int
	// UtilizationPercent is the GPU utilisation over the driver's last
	// sample period.
	UtilizationPercent *int
	// ECCSingleBitErrors counts volatile corrected (single-bit) ECC errors
	// since the driver loaded.
	ECCSingleBitErrors *int64
	// ECCDoubleBitErrors counts volatile uncorrected (double-bit) ECC errors
	// since the driver loaded.
	ECCDoubleBitErrors *int64
}

// ProcessMemory is GPU memory used by a set of processes, as sampled once.
type ProcessMemory struct {
	// PerGPU maps a GPU UUID to the bytes the processes use on it. A GPU on
	// which none of the processes runs has no entry.
	PerGPU map[string]int64
	// TotalBytes is the sum over PerGPU.
	TotalBytes int64
	// Incomplete is true when the driver did not report the memory of some
	// matching process (for example without permission); those processes
	// count as 0.
	Incomplete bool
}

// validUUID is what the tree accepts as a GPU UUID: it ends up in CDI device
// names, file names and environment variables, so it must be a CDI device
// name (letters, digits, '_', '.', ':', '-'; starting with a letter or digit).
var validUUID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)

// ValidateUUID returns an error when uuid is not safe to use as a GPU UUID
// (see ErrInvalidConfig).
func ValidateUUID(uuid string) error {
	if !validUUID.MatchString(uuid) {
		return fmt.Errorf("%w: gpu uuid %q: want letters, digits, '_', '.', ':' or '-', starting with a letter or digit, at most 128 characters", ErrInvalidConfig, uuid)
	}
	return nil
}

// Clone returns a deep copy of d: no pointer field is shared.
func (d Device) Clone() Device {
	c := d
	c.Minor = clonePtr(d.Minor)
	c.NUMANode = clonePtr(d.NUMANode)
	c.MemoryTotalBytes = clonePtr(d.MemoryTotalBytes)
	c.MemoryUsedBytes = clonePtr(d.MemoryUsedBytes)
	c.MIGEnabled = clonePtr(d.MIGEnabled)
	c.PowerDrawMilliwatts = clonePtr(d.PowerDrawMilliwatts)
	c.PowerLimitMilliwatts = clonePtr(d.PowerLimitMilliwatts)
	c.TemperatureCelsius = clonePtr(d.TemperatureCelsius)
	c.UtilizationPercent = clonePtr(d.UtilizationPercent)
	c.ECCSingleBitErrors = clonePtr(d.ECCSingleBitErrors)
	c.ECCDoubleBitErrors = clonePtr(d.ECCDoubleBitErrors)
	return c
}

func ptr[T any](v T) *T { return &v }

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	return ptr(*p)
}
