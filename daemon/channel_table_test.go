package daemon

import (
	"errors"
	"slices"
	"testing"
)

func TestChannelTable(t *testing.T) {
	var ct channelTable // the zero value is ready
	a := &taskChannels{task: "a"}
	if err := ct.claim(a, func(reg map[string]*taskChannels) error {
		if len(reg) != 0 {
			t.Errorf("first claim saw %v registered, want none", reg)
		}
		return nil
	}); err != nil {
		t.Fatalf("claim(a) = %v", err)
	}
	refused := errors.New("overlaps a")
	b := &taskChannels{task: "b"}
	if err := ct.claim(b, func(reg map[string]*taskChannels) error {
		if reg["a"] != a {
			t.Errorf("claim(b) saw %v registered, want a", reg)
		}
		return refused
	}); !errors.Is(err, refused) {
		t.Errorf("claim(b) = %v, want the check's error", err)
	}
	if ct.get("b") != nil {
		t.Error("claim(b) refused by its check registered b")
	}
	ct.register(b)
	if ct.get("a") != a || ct.get("b") != b {
		t.Errorf("get(a), get(b) = %v, %v, want both registered", ct.get("a"), ct.get("b"))
	}
	if got := ct.remove("a"); got != a || ct.get("a") != nil {
		t.Errorf("remove(a) = %v, then get(a) = %v; want a, then nil", got, ct.get("a"))
	}
	if got := ct.remove("a"); got != nil {
		t.Errorf("remove(a) again = %v, want nil", got)
	}
	var seen []string
	_ = ct.claim(&taskChannels{task: "c"}, func(reg map[string]*taskChannels) error {
		for id := range reg {
			seen = append(seen, id)
		}
		return nil
	})
	if !slices.Equal(seen, []string{"b"}) || ct.get("c") == nil {
		t.Errorf("claim(c) saw %v and registered %v, want [b] and c", seen, ct.get("c"))
	}
}
