package gpu

import (
	"fmt"
	"time"
)

// Health is a GPU's health as the node knows it. The zero value is
// HealthUnknown, so a GPU nobody watches is never taken for healthy.
type Health int

const (
	// HealthUnknown means health monitoring is not running for the GPU.
	// Such a GPU must not be assigned.
	HealthUnknown Health = iota
	// HealthHealthy means monitored and no critical event is outstanding.
	HealthHealthy
	// HealthUnhealthy means a critical event (XID, ECC) was seen; the GPU is
	// not assigned until it is re-probed healthy or cleared by an admin.
	HealthUnhealthy
)

func (h Health) String() string {
	switch h {
	case HealthUnknown:
		return "unknown"
	case HealthHealthy:
		return "healthy"
	case HealthUnhealthy:
		return "unhealthy"
	}
	return fmt.Sprintf("Health(%d)", int(h))
}

// XID is an NVIDIA XID error event as kept on a GPU.
type XID struct {
	// Code is the XID number.
	Code int
	// Time is when the node saw it.
	Time time.Time
	// Message describes it (see XIDDescription).
	Message string
}

// Status is a GPU's health with its evidence.
type Status struct {
	// UUID identifies the GPU.
	UUID string
	// Health is the current health.
	Health Health
	// Message says why the GPU is unhealthy or unknown; empty when healthy.
	Message string
	// LastXID is the most recent XID seen on the GPU, application XIDs
	// included; nil if none was seen since the monitor started.
	LastXID *XID
	// Since is when Health last changed (zero before the first change).
	Since time.Time
}

// Change is a Status that changed: its health, its message or its last XID.
type Change struct {
	// Previous is the health before the change.
	Previous Health
	// Status is the GPU's status after the change.
	Status Status
	// Cause is the critical event (a non-application XID, an uncorrected
	// ECC error, a lost GPU) that made this change; nil for changes made by
	// anything else (application XIDs, re-probes, clears, monitoring
	// starting or stopping). Each critical event yields exactly one Change
	// with a Cause, so a consumer can record faults from it without
	// duplicates.
	Cause *Event
}

// EventKind is the kind of a health event.
type EventKind int

const (
	// EventXID is an XID error; Event.XID holds the code.
	EventXID EventKind = iota + 1
	// EventDoubleBitECC is an uncorrected (double-bit) ECC error.
	EventDoubleBitECC
	// EventSingleBitECC is a corrected (single-bit) ECC error.
	EventSingleBitECC
	// EventLost is a GPU the driver no longer answers for (found by the
	// monitor, not delivered by a source).
	EventLost
)

func (k EventKind) String() string {
	switch k {
	case EventXID:
		return "xid"
	case EventDoubleBitECC:
		return "double-bit ecc"
	case EventSingleBitECC:
		return "single-bit ecc"
	case EventLost:
		return "lost"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is a health event reported by the driver for one GPU.
type Event struct {
	// UUID is the GPU; empty when the driver did not say which GPU, in
	// which case the event concerns every monitored GPU.
	UUID string
	// Kind is what happened.
	Kind EventKind
	// XID is the XID code for EventXID.
	XID int
	// Time is when it was seen; zero means "now" to the monitor.
	Time time.Time
}
