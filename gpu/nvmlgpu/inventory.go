package nvmlgpu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/pcnode/pcnode/gpu"
)

// Options configure Open.
type Options struct {
	// Lib is the NVML library to use; nil loads the system's
	// libnvidia-ml.so.1 (or LibraryPath).
	Lib nvml.Interface
	// LibraryPath is where to load libnvidia-ml from when Lib is nil;
	// empty uses the dynamic linker's search path.
	LibraryPath string
	// SysfsRoot is where a GPU's NUMA node is read from
	// (<SysfsRoot>/bus/pci/devices/<bus id>/numa_node) when NVML cannot
	// tell; empty means "/sys".
	SysfsRoot string
	// Logger receives warnings about queries that failed; nil discards.
	Logger *slog.Logger
}

// Inventory is the NVML backend. It is safe for concurrent use.
type Inventory struct {
	lib     nvml.Interface
	log     *slog.Logger
	sysfs   string
	system  gpu.SystemInfo
	symbols map[string]bool // optional NVML symbols the loaded library has

	// mu is held for reading around every NVML call and for writing by
	// Close, so that the library is never shut down under a call.
	mu     sync.RWMutex
	closed bool

	warnMu sync.Mutex
	warned map[string]bool
}

var _ gpu.Inventory = (*Inventory)(nil)

// newerSymbols are NVML functions that older drivers lack; calling a
// missing one would abort the process, so they are looked up first.
var newerSymbols = []string{"nvmlDeviceGetNumaNodeId", "nvmlDeviceGetMigMode"}

// Open initialises NVML and reads the driver and CUDA versions. A failure
// wraps gpu.ErrInit and says what to check.
func Open(ctx context.Context, opts Options) (*Inventory, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lib := opts.Lib
	if lib == nil {
		var libOpts []nvml.LibraryOption
		if opts.LibraryPath != "" {
			libOpts = append(libOpts, nvml.WithLibraryPath(opts.LibraryPath))
		}
		lib = nvml.New(libOpts...)
	}
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("%w: nvml: %s", gpu.ErrInit, initHint(ret))
	}
	inv := &Inventory{
		lib:     lib,
		log:     opts.Logger,
		sysfs:   opts.SysfsRoot,
		symbols: map[string]bool{},
		warned:  map[string]bool{},
	}
	if inv.log == nil {
		inv.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if inv.sysfs == "" {
		inv.sysfs = "/sys"
	}
	for _, sym := range newerSymbols {
		inv.symbols[sym] = lib.Extensions().LookupSymbol(sym) == nil
	}
	if v, ret := lib.SystemGetDriverVersion(); inv.optional("", "driver version", ret) {
		inv.system.DriverVersion = v
	}
	if v, ret := lib.SystemGetCudaDriverVersion(); inv.optional("", "cuda version", ret) && v > 0 {
		inv.system.CUDAVersion = fmt.Sprintf("%d.%d", v/1000, v%1000/10)
	}
	return inv, nil
}

// initHint turns an NVML init failure into advice for an operator.
func initHint(ret nvml.Return) string {
	switch ret {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return "libnvidia-ml.so.1 not found: is the NVIDIA driver installed? (on a node without NVIDIA GPUs use the \"none\" or \"static\" GPU backend)"
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return "the NVIDIA kernel driver is not loaded"
	case nvml.ERROR_NO_PERMISSION:
		return "no permission to talk to the NVIDIA driver"
	case nvml.ERROR_LIB_RM_VERSION_MISMATCH:
		return "the NVML library and the loaded kernel driver have different versions (reload the driver or reboot)"
	}
	return fmt.Sprintf("init failed: %s", ret.Error())
}

// Backend returns gpu.BackendNVML.
func (inv *Inventory) Backend() string { return gpu.BackendNVML }

// System returns the driver and CUDA versions read by Open.
func (inv *Inventory) System() gpu.SystemInfo { return inv.system }

// Close shuts NVML down once in-flight calls have returned. It is safe to
// call more than once.
func (inv *Inventory) Close() error {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.closed {
		return nil
	}
	inv.closed = true
	if ret := inv.lib.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("nvml shutdown: %w", ret)
	}
	return nil
}

// use runs f while holding the library open; it fails with gpu.ErrClosed
// after Close.
func (inv *Inventory) use(f func() error) error {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	if inv.closed {
		return gpu.ErrClosed
	}
	return f()
}

// Devices returns every GPU NVML sees, ordered by index.
func (inv *Inventory) Devices(ctx context.Context) ([]gpu.Device, error) {
	var out []gpu.Device
	err := inv.use(func() error {
		n, ret := inv.lib.DeviceGetCount()
		if ret != nvml.SUCCESS {
			return fmt.Errorf("%w: nvml device count: %w", gpu.ErrDevice, ret)
		}
		out = make([]gpu.Device, 0, n)
		var errs []error
		for i := range n {
			if err := ctx.Err(); err != nil {
				return err
			}
			d, err := inv.device(i)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, d)
		}
		return errors.Join(errs...)
	})
	return out, err
}

// notAvailable reports whether ret means the query is not supported here.
func notAvailable(ret nvml.Return) bool {
	return ret == nvml.ERROR_NOT_SUPPORTED || ret == nvml.ERROR_FUNCTION_NOT_FOUND
}

// optional reports whether an optional query succeeded. A failure other
// than "not available" is logged once per GPU and field.
func (inv *Inventory) optional(uuid, field string, ret nvml.Return) bool {
	if ret == nvml.SUCCESS {
		return true
	}
	if notAvailable(ret) {
		return false
	}
	key := uuid + "\x00" + field + "\x00" + fmt.Sprint(int(ret))
	inv.warnMu.Lock()
	first := !inv.warned[key]
	inv.warned[key] = true
	inv.warnMu.Unlock()
	if first {
		inv.log.Warn("nvml query failed; reporting the field as not available",
			"gpu", uuid, "field", field, "error", ret.Error())
	}
	return false
}
