// Package cdi owns the Container Device Interface (CDI) side of the node's
// GPUs: writing a CDI spec for them (WriteSpec, for tests and for nodes
// without nvidia-ctk) and checking that the spec directories define a CDI
// device for each GPU the daemon may assign (Available, Check), so that a
// GPU task is refused with a clear message instead of started blind.
//
// Devices are of kind nvidia.com/gpu and are named by UUID
// ("nvidia.com/gpu=GPU-…"), the name the daemon injects; WriteSpec also
// names each by index ("nvidia.com/gpu=0"), as nvidia-ctk does.
//
// # What WriteSpec writes
//
// Per GPU: the device node /dev/nvidia<minor> and NVIDIA_VISIBLE_DEVICES set
// to the GPU's UUID. Common to all: /dev/nvidiactl, and /dev/nvidia-uvm,
// /dev/nvidia-uvm-tools and /dev/nvidia-modeset where they exist. CDI
// replaces an environment variable by name, so a container given several
// GPUs sees only the last GPU's NVIDIA_VISIBLE_DEVICES: the injector must
// set it to all assigned UUIDs afterwards (VisibleDevices).
//
// WriteSpec does not mount the driver's user-space libraries or run hooks
// as `nvidia-ctk cdi generate` does; on a real GPU node prefer nvidia-ctk's
// spec and use WriteSpec for tests and for images that carry what they need.
// Do not write both into the same directory: two specs defining the same
// device conflict and CDI then drops the device.
//
// Spec parsing, validation and atomic writing are CDI's own
// (tags.cncf.io/container-device-interface).
package cdi
