package daemon

import (
	"errors"
	"testing"
)

func TestNodeAdminDrain(t *testing.T) {
	var a nodeAdmin // the zero value admits
	if a.isDraining() || a.isRecovering() {
		t.Fatalf("zero nodeAdmin: draining %v, recovering %v, want neither", a.isDraining(), a.isRecovering())
	}
	persisted, changed := 0, 0
	persist := func() error { persisted++; return nil }
	announce := func() { changed++ }

	failed := errors.New("disk full")
	if err := a.setDraining(true, func() error { return failed }, announce); !errors.Is(err, failed) {
		t.Errorf("setDraining(true) with a failing write = %v, want its error", err)
	}
	if a.isDraining() || changed != 0 {
		t.Errorf("after a failed write: draining %v, announced %d times; want nothing changed", a.isDraining(), changed)
	}
	if err := a.setDraining(true, persist, announce); err != nil || !a.isDraining() || persisted != 1 || changed != 1 {
		t.Errorf("setDraining(true) = %v: draining %v, written %d, announced %d; want draining, 1, 1", err, a.isDraining(), persisted, changed)
	}
	if err := a.setDraining(true, persist, announce); err != nil || persisted != 1 || changed != 1 {
		t.Errorf("setDraining(true) again = %v: written %d, announced %d; want neither again", err, persisted, changed)
	}
	if err := a.setDraining(false, persist, announce); err != nil || a.isDraining() || persisted != 2 || changed != 2 {
		t.Errorf("setDraining(false) = %v: draining %v, written %d, announced %d; want admitting, 2, 2", err, a.isDraining(), persisted, changed)
	}
	a.restoreDraining()
	if !a.isDraining() || persisted != 2 {
		t.Errorf("restoreDraining(): draining %v, written %d; want draining and nothing written", a.isDraining(), persisted)
	}
	a.setRecovering(true)
	if !a.isRecovering() {
		t.Error("setRecovering(true) did not")
	}
}
