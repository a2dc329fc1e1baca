package nvmlgpu

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/pcnode/pcnode/gpu"
)

// device reads GPU i. Only a missing handle or UUID is an error.
func (inv *Inventory) device(i int) (gpu.Device, error) {
	h, ret := inv.lib.DeviceGetHandleByIndex(i)
	if ret != nvml.SUCCESS {
		return gpu.Device{}, fmt.Errorf("%w: gpu index %d: handle: %w", gpu.ErrDevice, i, ret)
	}
	uuid, ret := h.GetUUID()
	if ret != nvml.SUCCESS || uuid == "" {
		return gpu.Device{}, fmt.Errorf("%w: gpu index %d: uuid: %w", gpu.ErrDevice, i, ret)
	}
	d := gpu.Device{Index: i, UUID: uuid}
	inv.fill(&d, h)
	return d, nil
}

// fill sets every optional attribute the driver answers for.
func (inv *Inventory) fill(d *gpu.Device, h nvml.Device) {
	ok := func(field string, ret nvml.Return) bool { return inv.optional(d.UUID, field, ret) }

	if v, ret := h.GetName(); ok("model", ret) {
		d.Model = v
	}
	if v, ret := h.GetPciInfo(); ok("pci bus id", ret) {
		d.PCIBusID = busID(v)
	}
	if v, ret := h.GetMinorNumber(); ok("minor number", ret) && v >= 0 {
		d.Minor = ptr(v)
	}
	d.NUMANode = inv.numaNode(d.UUID, d.PCIBusID, h)
	if v, ret := h.GetMemoryInfo(); ok("memory", ret) {
		d.MemoryTotalBytes = ptr(clampInt64(v.Total))
		d.MemoryUsedBytes = ptr(clampInt64(v.Used))
	}
	if major, minor, ret := h.GetCudaComputeCapability(); ok("compute capability", ret) {
		d.ComputeCapability = fmt.Sprintf("%d.%d", major, minor)
	}
	if inv.symbols["nvmlDeviceGetMigMode"] {
		if current, _, ret := h.GetMigMode(); ok("mig mode", ret) {
			d.MIGEnabled = ptr(current == nvml.DEVICE_MIG_ENABLE)
		}
	}
	if v, ret := h.GetPowerUsage(); ok("power draw", ret) {
		d.PowerDrawMilliwatts = ptr(int64(v))
	}
	if v, ret := h.GetEnforcedPowerLimit(); ok("power limit", ret) {
		d.PowerLimitMilliwatts = ptr(int64(v))
	} else if v, ret := h.GetPowerManagementLimit(); ok("power limit", ret) {
		d.PowerLimitMilliwatts = ptr(int64(v))
	}
	if v, ret := h.GetTemperature(nvml.TEMPERATURE_GPU); ok("temperature", ret) {
		d.TemperatureCelsius = ptr(int(v))
	}
	if v, ret := h.GetUtilizationRates(); ok("utilization", ret) {
		d.UtilizationPercent = ptr(int(v.Gpu))
	}
	if v, ret := h.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_CORRECTED, nvml.VOLATILE_ECC); ok("ecc single-bit", ret) {
		d.ECCSingleBitErrors = ptr(clampInt64(v))
	}
	if v, ret := h.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.VOLATILE_ECC); ok("ecc double-bit", ret) {
		d.ECCDoubleBitErrors = ptr(clampInt64(v))
	}
}

// numaNode asks NVML, then sysfs; nil when neither knows or the GPU has
// no NUMA affinity (-1).
func (inv *Inventory) numaNode(uuid, pciBusID string, h nvml.Device) *int {
	if inv.symbols["nvmlDeviceGetNumaNodeId"] {
		if v, ret := h.GetNumaNodeId(); inv.optional(uuid, "numa node", ret) {
			if v < 0 {
				return nil
			}
			return ptr(v)
		}
	}
	addr := sysfsPCIAddress(pciBusID)
	if addr == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(inv.sysfs, "bus", "pci", "devices", addr, "numa_node"))
	if err != nil {
		return nil
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || v < 0 {
		return nil
	}
	return ptr(v)
}

// busID returns the PCI bus id NVML wrote into p, e.g. "00000000:07:00.0".
func busID(p nvml.PciInfo) string {
	id := cString(p.BusId[:])
	if id == "" {
		id = cString(p.BusIdLegacy[:])
	}
	return id
}

func cString(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

// sysfsPCIAddress turns NVML's bus id ("00000000:07:00.0", 8-digit domain)
// into the kernel's ("0000:07:00.0"). It returns "" for anything that is
// not a well-formed PCI address, so the result is safe in a path.
func sysfsPCIAddress(busID string) string {
	parts := strings.Split(strings.ToLower(busID), ":")
	if len(parts) != 3 {
		return ""
	}
	domain := strings.TrimLeft(parts[0], "0")
	if len(domain) > 4 {
		return ""
	}
	domain = strings.Repeat("0", 4-len(domain)) + domain
	devFn := strings.Split(parts[2], ".")
	if len(devFn) != 2 || !isHex(domain, 4) || !isHex(parts[1], 2) || !isHex(devFn[0], 2) || !isHex(devFn[1], 1) {
		return ""
	}
	return domain + ":" + parts[1] + ":" + parts[2]
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

func clampInt64(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}

func ptr[T any](v T) *T { return &v }
