package gpu

import "errors"

var (
	// ErrInit is returned when a GPU backend cannot start, for example when
	// the NVML library cannot be loaded or initialised.
	ErrInit = errors.New("gpu backend unavailable")

	// ErrDevice is returned when a GPU cannot be identified (its handle or
	// UUID cannot be read). Inventories return it alongside the GPUs they
	// could identify.
	ErrDevice = errors.New("gpu cannot be identified")

	// ErrUnknownGPU is returned when a UUID names no GPU of the inventory.
	ErrUnknownGPU = errors.New("unknown gpu")

	// ErrNotMonitored is returned when an operation needs health monitoring
	// for a GPU that is not being monitored (its health is unknown).
	ErrNotMonitored = errors.New("gpu health is not monitored")

	// ErrHealthUnavailable is returned when health monitoring cannot start:
	// the driver offers no event set, or no GPU can be registered for events.
	ErrHealthUnavailable = errors.New("gpu health monitoring unavailable")

	// ErrProbe is returned when a re-probe finds a GPU not responding.
	ErrProbe = errors.New("gpu not responding")

	// ErrInvalidConfig is returned when GPUs declared in the config are
	// invalid (duplicate index or UUID, unsafe UUID, negative size).
	ErrInvalidConfig = errors.New("invalid gpu config")

	// ErrNoCDIDevice is returned when a GPU has no CDI device in the CDI
	// spec directories, so it cannot be injected into a container.
	ErrNoCDIDevice = errors.New("no CDI device for gpu")

	// ErrClosed is returned when an inventory is used after Close.
	ErrClosed = errors.New("gpu inventory closed")
)
