package gputest

import (
	"fmt"
	"slices"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// Server is a mock NVML system: an nvml.Interface backed by go-nvml's mock
// server, completed so that every device query the gpu tree makes answers
// (go-nvml's mock devices leave power, temperature, NUMA, ECC, events and
// processes unset), with attributes tests may change while it is in use.
// Its methods are safe for concurrent use with the NVML calls it serves.
type Server struct {
	*server.Server

	mu       sync.Mutex
	gpus     []*GPU
	failures map[failKey]nvml.Return
	missing  map[string]bool
	sets     []*eventSet
}

var _ nvml.Interface = (*Server)(nil)

// GPU is the state of one mock GPU. Change it only through Server.Update,
// which holds the lock the mock's NVML calls take.
type GPU struct {
	// Device is go-nvml's mock device behind this GPU.
	Device *server.Device

	UUID              string
	Name              string
	PCIBusID          string
	Minor             int
	NUMANode          int
	MemoryTotal       uint64
	MemoryUsed        uint64
	CCMajor, CCMinor  int
	MIGMode           int
	PowerUsage        uint32 // milliwatts
	PowerLimit        uint32 // milliwatts
	Temperature       uint32 // Celsius
	Utilization       uint32 // percent
	ECCCorrected      uint64
	ECCUncorrected    uint64
	SupportedEvents   uint64
	ComputeProcesses  []nvml.ProcessInfo
	GraphicsProcesses []nvml.ProcessInfo
}

// NewDGXA100 returns an 8-GPU DGX A100 (A100-SXM4-40GB, driver 550.54.15,
// CUDA 12.4) in which every attribute is set: GPU i has UUID UUID(i), bus id
// "00000000:<0x07+i>:00.0", minor number i, NUMA node i/4, 1 GiB used,
// 250 W of a 400 W limit, 40+i °C, 10·i % utilisation, no ECC errors, and
// supports XID and ECC events.
func NewDGXA100() *Server {
	return Wrap(dgxa100.New())
}

// UUID returns the UUID that Wrap gives GPU i.
func UUID(i int) string {
	return fmt.Sprintf("GPU-0000000%d-a100-4000-8000-00000000000%d", i%10, i%10)
}

// Wrap completes a go-nvml mock server (e.g. dgxh100.New()) whose devices
// are *server.Device, as NewDGXA100 describes, and returns it.
func Wrap(srv *server.Server) *Server {
	s := &Server{Server: srv, failures: map[failKey]nvml.Return{}, missing: map[string]bool{}}
	for i, d := range srv.Devices {
		dev := d.(*server.Device)
		g := &GPU{
			Device:          dev,
			UUID:            UUID(i),
			Name:            dev.Config.Name,
			PCIBusID:        fmt.Sprintf("00000000:%02X:00.0", 0x07+i),
			Minor:           i,
			NUMANode:        i / 4,
			MemoryTotal:     dev.Config.MemoryMB << 20,
			MemoryUsed:      1 << 30,
			CCMajor:         dev.Config.CudaMajor,
			CCMinor:         dev.Config.CudaMinor,
			PowerUsage:      250_000,
			PowerLimit:      400_000,
			Temperature:     uint32(40 + i),
			Utilization:     uint32(10 * i % 101),
			SupportedEvents: nvml.EventTypeXidCriticalError | nvml.EventTypeDoubleBitEccError | nvml.EventTypeSingleBitEccError,
		}
		dev.UUID = g.UUID
		dev.PciBusID = g.PCIBusID
		s.gpus = append(s.gpus, g)
		s.installDevice(i, dev)
	}
	s.installSystem()
	return s
}

// UUIDs returns the GPUs' UUIDs in index order.
func (s *Server) UUIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.gpus))
	for i, g := range s.gpus {
		out[i] = g.UUID
	}
	return out
}

// Update calls f with GPU i under the server's lock: the way to change an
// attribute while the mock is in use.
func (s *Server) Update(i int, f func(g *GPU)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.gpus[i])
}

// SetProcesses sets the processes NVML reports running on GPU i.
func (s *Server) SetProcesses(i int, compute, graphics []nvml.ProcessInfo) {
	s.Update(i, func(g *GPU) {
		g.ComputeProcesses = slices.Clone(compute)
		g.GraphicsProcesses = slices.Clone(graphics)
	})
}

func (s *Server) installSystem() {
	srv := s.Server
	driver, cuda := srv.SystemGetDriverVersionFunc, srv.SystemGetCudaDriverVersionFunc
	count, byIndex := srv.DeviceGetCountFunc, srv.DeviceGetHandleByIndexFunc
	srv.InitFunc = func() nvml.Return { return s.failure(-1, "Init") }
	srv.SystemGetDriverVersionFunc = func() (string, nvml.Return) {
		if r := s.failure(-1, "SystemGetDriverVersion"); r != nvml.SUCCESS {
			return "", r
		}
		return driver()
	}
	srv.SystemGetCudaDriverVersionFunc = func() (int, nvml.Return) {
		if r := s.failure(-1, "SystemGetCudaDriverVersion"); r != nvml.SUCCESS {
			return 0, r
		}
		return cuda()
	}
	srv.DeviceGetCountFunc = func() (int, nvml.Return) {
		if r := s.failure(-1, "DeviceGetCount"); r != nvml.SUCCESS {
			return 0, r
		}
		return count()
	}
	srv.DeviceGetHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
		if r := s.failure(i, "DeviceGetHandleByIndex"); r != nvml.SUCCESS {
			return nil, r
		}
		return byIndex(i)
	}
	srv.DeviceGetHandleByUUIDFunc = func(uuid string) (nvml.Device, nvml.Return) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, g := range s.gpus {
			if g.UUID == uuid {
				if r := s.failureLocked(i, "DeviceGetHandleByUUID"); r != nvml.SUCCESS {
					return nil, r
				}
				return g.Device, nvml.SUCCESS
			}
		}
		return nil, nvml.ERROR_NOT_FOUND
	}
	srv.EventSetCreateFunc = s.eventSetCreate
	srv.LookupSymbolFunc = func(name string) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.missing[name] {
			return fmt.Errorf("gputest: symbol %s not found", name)
		}
		return nil
	}
}

// MissingSymbols makes LookupSymbol fail for the given NVML symbols (e.g.
// "nvmlDeviceGetNumaNodeId"), as a driver too old to have them would.
func (s *Server) MissingSymbols(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		s.missing[n] = true
	}
}

// installDevice replaces or adds every device query the gpu tree makes.
func (s *Server) installDevice(i int, dev *server.Device) {
	dev.GetUUIDFunc = func() (string, nvml.Return) {
		return get(s, i, "GetUUID", func(g *GPU) string { return g.UUID })
	}
	dev.GetNameFunc = func() (string, nvml.Return) {
		return get(s, i, "GetName", func(g *GPU) string { return g.Name })
	}
	dev.GetIndexFunc = func() (int, nvml.Return) {
		return get(s, i, "GetIndex", func(*GPU) int { return i })
	}
	dev.GetMinorNumberFunc = func() (int, nvml.Return) {
		return get(s, i, "GetMinorNumber", func(g *GPU) int { return g.Minor })
	}
	dev.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
		return get(s, i, "GetPciInfo", func(g *GPU) nvml.PciInfo {
			p := nvml.PciInfo{PciDeviceId: g.Device.Config.PciDeviceId}
			for j := 0; j < len(g.PCIBusID) && j < len(p.BusId)-1; j++ {
				p.BusId[j] = int8(g.PCIBusID[j])
			}
			return p
		})
	}
	dev.GetNumaNodeIdFunc = func() (int, nvml.Return) {
		return get(s, i, "GetNumaNodeId", func(g *GPU) int { return g.NUMANode })
	}
	dev.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
		return get(s, i, "GetMemoryInfo", func(g *GPU) nvml.Memory {
			return nvml.Memory{Total: g.MemoryTotal, Used: g.MemoryUsed, Free: g.MemoryTotal - g.MemoryUsed}
		})
	}
	dev.GetCudaComputeCapabilityFunc = func() (int, int, nvml.Return) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r := s.failureLocked(i, "GetCudaComputeCapability"); r != nvml.SUCCESS {
			return 0, 0, r
		}
		return s.gpus[i].CCMajor, s.gpus[i].CCMinor, nvml.SUCCESS
	}
	dev.GetMigModeFunc = func() (int, int, nvml.Return) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r := s.failureLocked(i, "GetMigMode"); r != nvml.SUCCESS {
			return 0, 0, r
		}
		return s.gpus[i].MIGMode, s.gpus[i].MIGMode, nvml.SUCCESS
	}
	dev.GetPowerUsageFunc = func() (uint32, nvml.Return) {
		return get(s, i, "GetPowerUsage", func(g *GPU) uint32 { return g.PowerUsage })
	}
	dev.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) {
		return get(s, i, "GetEnforcedPowerLimit", func(g *GPU) uint32 { return g.PowerLimit })
	}
	dev.GetPowerManagementLimitFunc = func() (uint32, nvml.Return) {
		return get(s, i, "GetPowerManagementLimit", func(g *GPU) uint32 { return g.PowerLimit })
	}
	dev.GetTemperatureFunc = func(sensor nvml.TemperatureSensors) (uint32, nvml.Return) {
		if sensor != nvml.TEMPERATURE_GPU {
			return 0, nvml.ERROR_INVALID_ARGUMENT
		}
		return get(s, i, "GetTemperature", func(g *GPU) uint32 { return g.Temperature })
	}
	dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return get(s, i, "GetUtilizationRates", func(g *GPU) nvml.Utilization {
			return nvml.Utilization{Gpu: g.Utilization}
		})
	}
	dev.GetTotalEccErrorsFunc = func(t nvml.MemoryErrorType, c nvml.EccCounterType) (uint64, nvml.Return) {
		return get(s, i, "GetTotalEccErrors", func(g *GPU) uint64 {
			if t == nvml.MEMORY_ERROR_TYPE_UNCORRECTED {
				return g.ECCUncorrected
			}
			return g.ECCCorrected
		})
	}
	dev.GetSupportedEventTypesFunc = func() (uint64, nvml.Return) {
		return get(s, i, "GetSupportedEventTypes", func(g *GPU) uint64 { return g.SupportedEvents })
	}
	dev.RegisterEventsFunc = func(mask uint64, set nvml.EventSet) nvml.Return {
		return s.registerEvents(i, mask, set)
	}
	dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return get(s, i, "GetComputeRunningProcesses", func(g *GPU) []nvml.ProcessInfo {
			return slices.Clone(g.ComputeProcesses)
		})
	}
	dev.GetGraphicsRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return get(s, i, "GetGraphicsRunningProcesses", func(g *GPU) []nvml.ProcessInfo {
			return slices.Clone(g.GraphicsProcesses)
		})
	}
}

// get answers a device query: the configured failure, or f's value.
func get[T any](s *Server, i int, method string, f func(g *GPU) T) (T, nvml.Return) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var zero T
	if r := s.failureLocked(i, method); r != nvml.SUCCESS {
		return zero, r
	}
	return f(s.gpus[i]), nvml.SUCCESS
}
