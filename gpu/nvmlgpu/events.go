package nvmlgpu

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/pcnode/pcnode/gpu"
)

// watchedEvents are the NVML event types the source registers for, where
// the GPU supports them. XID is required: a GPU that cannot report XIDs is
// not watched.
const watchedEvents = nvml.EventTypeXidCriticalError | nvml.EventTypeDoubleBitEccError | nvml.EventTypeSingleBitEccError

// EventSource delivers NVML health events (XID, double- and single-bit
// ECC) and re-probes GPUs for the health monitor (gpu/health). Create it with
// Inventory.EventSource.
type EventSource struct {
	inv         *Inventory
	waitTimeout time.Duration
}

// EventSource returns a health event source over inv's NVML. waitTimeout
// bounds each EventSetWait, and so how long Watch takes to notice that its
// context is done; 0 means one second.
func (inv *Inventory) EventSource(waitTimeout time.Duration) *EventSource {
	if waitTimeout <= 0 {
		waitTimeout = time.Second
	}
	return &EventSource{inv: inv, waitTimeout: waitTimeout}
}

// Watch creates an NVML event set, registers every GPU in uuids for the
// XID and ECC events it supports, calls started with the GPUs it could not
// register (and why), then calls emit for each event until ctx is done
// (returning nil) or the driver fails (returning the error). If the event
// set cannot be created, or no GPU can be registered, it returns an error
// wrapping gpu.ErrHealthUnavailable without calling started. A GPU that
// the driver reports lost has an error wrapping gpu.ErrProbe.
func (s *EventSource) Watch(ctx context.Context, uuids []string, started func(unwatched map[string]error), emit func(gpu.Event)) error {
	var set nvml.EventSet
	unwatched := map[string]error{}
	err := s.inv.use(func() error {
		var ret nvml.Return
		set, ret = s.inv.lib.EventSetCreate()
		if ret != nvml.SUCCESS {
			return fmt.Errorf("%w: nvml event set: %w", gpu.ErrHealthUnavailable, ret)
		}
		for _, uuid := range uuids {
			if err := s.register(set, uuid); err != nil {
				unwatched[uuid] = err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer func() {
		_ = s.inv.use(func() error { set.Free(); return nil })
	}()
	if len(uuids) > 0 && len(unwatched) == len(uuids) {
		return fmt.Errorf("%w: no gpu could be registered for events: %w", gpu.ErrHealthUnavailable, errors.Join(mapErrors(uuids, unwatched)...))
	}
	started(unwatched)

	timeoutMs := uint32(min(s.waitTimeout.Milliseconds(), 1<<31))
	for ctx.Err() == nil {
		var data nvml.EventData
		var ret nvml.Return
		err := s.inv.use(func() error {
			data, ret = set.Wait(timeoutMs)
			return nil
		})
		if err != nil {
			return err
		}
		switch ret {
		case nvml.SUCCESS:
			if ev, ok := s.event(data); ok {
				emit(ev)
			}
		case nvml.ERROR_TIMEOUT:
		default:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("nvml event wait: %w", ret)
		}
	}
	return nil
}

// register adds uuid's supported health events to set.
func (s *EventSource) register(set nvml.EventSet, uuid string) error {
	h, ret := s.inv.lib.DeviceGetHandleByUUID(uuid)
	if ret != nvml.SUCCESS {
		return lostOr(ret, fmt.Errorf("handle: %w", ret))
	}
	mask := uint64(watchedEvents)
	supported, ret := h.GetSupportedEventTypes()
	switch {
	case ret == nvml.SUCCESS:
		mask &= supported
	case notAvailable(ret):
		mask = nvml.EventTypeXidCriticalError
	default:
		return lostOr(ret, fmt.Errorf("supported event types: %w", ret))
	}
	if mask&nvml.EventTypeXidCriticalError == 0 {
		return fmt.Errorf("the driver reports no XID events for this gpu")
	}
	if ret := h.RegisterEvents(mask, set); ret != nvml.SUCCESS {
		return lostOr(ret, fmt.Errorf("register events %#x: %w", mask, ret))
	}
	return nil
}

// event converts NVML event data; ok is false for event types not watched.
func (s *EventSource) event(data nvml.EventData) (gpu.Event, bool) {
	var ev gpu.Event
	if data.Device != nil {
		uuid, ret := data.Device.GetUUID()
		if ret == nvml.SUCCESS {
			ev.UUID = uuid
		}
	}
	switch data.EventType {
	case nvml.EventTypeXidCriticalError:
		ev.Kind, ev.XID = gpu.EventXID, int(min(data.EventData, 1<<31-1))
	case nvml.EventTypeDoubleBitEccError:
		ev.Kind = gpu.EventDoubleBitECC
	case nvml.EventTypeSingleBitEccError:
		ev.Kind = gpu.EventSingleBitECC
	default:
		return gpu.Event{}, false
	}
	return ev, true
}

// Probe checks that the GPU responds: its handle is found by UUID and its
// memory information can be read. A failure wraps gpu.ErrProbe.
func (s *EventSource) Probe(ctx context.Context, uuid string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.inv.use(func() error {
		h, ret := s.inv.lib.DeviceGetHandleByUUID(uuid)
		if ret != nvml.SUCCESS {
			return fmt.Errorf("%w: %s: handle: %w", gpu.ErrProbe, uuid, ret)
		}
		if _, ret := h.GetMemoryInfo(); ret != nvml.SUCCESS {
			return fmt.Errorf("%w: %s: memory info: %w", gpu.ErrProbe, uuid, ret)
		}
		return nil
	})
}

// lostOr marks errors saying the GPU is gone as gpu.ErrProbe.
func lostOr(ret nvml.Return, err error) error {
	if ret == nvml.ERROR_GPU_IS_LOST {
		return fmt.Errorf("%w: %w", gpu.ErrProbe, err)
	}
	return err
}

func mapErrors(order []string, m map[string]error) []error {
	var errs []error
	for _, k := range order {
		if err, ok := m[k]; ok {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	return errs
}
