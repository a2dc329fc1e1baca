package gputest

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Methods lists the NVML methods whose result Fail and FailGPU can set:
// the system-wide ones (Init, SystemGetDriverVersion, ...) and the device
// ones, by their go-nvml name.
var Methods = []string{
	"Init", "SystemGetDriverVersion", "SystemGetCudaDriverVersion", "DeviceGetCount",
	"DeviceGetHandleByIndex", "DeviceGetHandleByUUID", "EventSetCreate",
	"GetUUID", "GetName", "GetIndex", "GetMinorNumber", "GetPciInfo", "GetNumaNodeId",
	"GetMemoryInfo", "GetCudaComputeCapability", "GetMigMode", "GetPowerUsage",
	"GetEnforcedPowerLimit", "GetPowerManagementLimit", "GetTemperature",
	"GetUtilizationRates", "GetTotalEccErrors", "GetSupportedEventTypes", "RegisterEvents",
	"GetComputeRunningProcesses", "GetGraphicsRunningProcesses",
}

// NotSupportedMethods are the device queries for optional attributes: make
// them all fail with ERROR_NOT_SUPPORTED to model a GPU (such as a consumer
// card) that supports none of them.
var NotSupportedMethods = []string{
	"GetMinorNumber", "GetNumaNodeId", "GetCudaComputeCapability", "GetMigMode",
	"GetPowerUsage", "GetEnforcedPowerLimit", "GetPowerManagementLimit", "GetTemperature",
	"GetUtilizationRates", "GetTotalEccErrors", "GetMemoryInfo", "GetPciInfo", "GetName",
}

type failKey struct {
	gpu    int // -1: every GPU and the system-wide methods
	method string
}

// Fail makes method return ret on every GPU (and for system-wide methods);
// nvml.SUCCESS undoes it. It panics on a method name not in Methods.
func (s *Server) Fail(method string, ret nvml.Return) { s.FailGPU(-1, method, ret) }

// FailGPU makes method return ret on GPU i only; nvml.SUCCESS undoes it.
func (s *Server) FailGPU(i int, method string, ret nvml.Return) {
	known := false
	for _, m := range Methods {
		known = known || m == method
	}
	if !known {
		panic(fmt.Sprintf("gputest: unknown NVML method %q", method))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ret == nvml.SUCCESS {
		delete(s.failures, failKey{i, method})
		return
	}
	s.failures[failKey{i, method}] = ret
}

// NotSupported makes each method return ERROR_NOT_SUPPORTED on every GPU.
func (s *Server) NotSupported(methods ...string) {
	for _, m := range methods {
		s.Fail(m, nvml.ERROR_NOT_SUPPORTED)
	}
}

func (s *Server) failure(i int, method string) nvml.Return {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failureLocked(i, method)
}

func (s *Server) failureLocked(i int, method string) nvml.Return {
	if r, ok := s.failures[failKey{i, method}]; ok {
		return r
	}
	if r, ok := s.failures[failKey{-1, method}]; ok {
		return r
	}
	return nvml.SUCCESS
}
