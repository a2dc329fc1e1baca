package gputest_test

import (
	"context"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/pcnode/pcnode/gpu/gputest"
)

func TestFakeClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := gputest.NewFakeClock(t0)
	a, b := c.After(time.Minute), c.After(2*time.Minute)
	if err := c.WaitForWaiters(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	select {
	case got := <-a:
		if !got.Equal(t0.Add(time.Minute)) {
			t.Errorf("After(1m) fired with %v, want %v", got, t0.Add(time.Minute))
		}
	default:
		t.Error("After(1m) did not fire after Advance(1m)")
	}
	select {
	case <-b:
		t.Error("After(2m) fired after Advance(1m)")
	default:
	}
	if c.Waiters() != 1 || !c.Now().Equal(t0.Add(time.Minute)) {
		t.Errorf("Waiters, Now = %d, %v, want 1, %v", c.Waiters(), c.Now(), t0.Add(time.Minute))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := c.WaitForWaiters(ctx, 5); err == nil {
		t.Error("WaitForWaiters(5) with 1 waiter = nil, want the context's error")
	}
}

func TestEventSet(t *testing.T) {
	s := gputest.NewDGXA100()
	if err := s.InjectXID(0, 79); err == nil {
		t.Error("InjectXID without a registered event set = nil, want an error")
	}
	set, ret := s.EventSetCreate()
	if ret != nvml.SUCCESS {
		t.Fatalf("EventSetCreate = %v", ret)
	}
	dev, _ := s.DeviceGetHandleByIndex(1)
	if ret := dev.RegisterEvents(nvml.EventTypeXidCriticalError, set); ret != nvml.SUCCESS {
		t.Fatalf("RegisterEvents = %v", ret)
	}
	if ret := dev.RegisterEvents(nvml.EventTypeClock, set); ret != nvml.ERROR_NOT_SUPPORTED {
		t.Errorf("RegisterEvents(unsupported type) = %v, want %v", ret, nvml.ERROR_NOT_SUPPORTED)
	}
	if got := s.Registered(1); got != nvml.EventTypeXidCriticalError {
		t.Errorf("Registered(1) = %#x, want %#x", got, nvml.EventTypeXidCriticalError)
	}
	if err := s.InjectECC(1, true); err == nil {
		t.Error("InjectECC for a type not registered = nil, want an error")
	}
	if err := s.InjectXID(1, 79); err != nil {
		t.Fatal(err)
	}
	data, ret := set.Wait(1000)
	if ret != nvml.SUCCESS || data.EventData != 79 || data.Device != dev {
		t.Errorf("Wait = %+v, %v, want XID 79 on GPU 1", data, ret)
	}
	if _, ret := set.Wait(1); ret != nvml.ERROR_TIMEOUT {
		t.Errorf("Wait on an empty set = %v, want %v", ret, nvml.ERROR_TIMEOUT)
	}
	set.Free()
	if n := s.LiveEventSets(); n != 0 {
		t.Errorf("LiveEventSets after Free = %d, want 0", n)
	}
}

func TestFailUnknownMethodPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Fail with a misspelt method did not panic")
		}
	}()
	gputest.NewDGXA100().Fail("GetPowerUsag", nvml.ERROR_NOT_SUPPORTED)
}
