package cdi

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/pcnode/pcnode/gpu"
)

// Availability says which GPUs have a CDI device in the spec directories.
type Availability struct {
	// Present are the UUIDs that have a device "nvidia.com/gpu=<uuid>".
	Present []string
	// Missing are the UUIDs that have none.
	Missing []string
	// SpecErrors describe spec files that could not be used (invalid,
	// unreadable, or defining a device twice), sorted.
	SpecErrors []string
}

// Available reads the CDI spec directories (lowest priority first; nil
// means DefaultSpecDirs; a directory that does not exist defines nothing)
// and reports which of uuids have a CDI device.
func Available(specDirs []string, uuids []string) (Availability, error) {
	if specDirs == nil {
		specDirs = DefaultSpecDirs
	}
	cache, err := cdiapi.NewCache(cdiapi.WithSpecDirs(specDirs...), cdiapi.WithAutoRefresh(false))
	if err != nil {
		return Availability{}, fmt.Errorf("cdi: %w", err)
	}
	var a Availability
	for _, u := range uuids {
		if cache.GetDevice(DeviceName(u)) != nil {
			a.Present = append(a.Present, u)
		} else {
			a.Missing = append(a.Missing, u)
		}
	}
	for path, errs := range cache.GetErrors() {
		for _, e := range errs {
			a.SpecErrors = append(a.SpecErrors, fmt.Sprintf("%s: %v", path, e))
		}
	}
	sort.Strings(a.SpecErrors)
	a.SpecErrors = slices.Compact(a.SpecErrors)
	return a, nil
}

// Check returns nil when every GPU in uuids has a CDI device in specDirs,
// and otherwise an error wrapping gpu.ErrNoCDIDevice that names the missing
// GPUs, the directories searched, any broken spec files, and the fix.
func Check(specDirs []string, uuids []string) error {
	if specDirs == nil {
		specDirs = DefaultSpecDirs
	}
	a, err := Available(specDirs, uuids)
	if err != nil {
		return err
	}
	if len(a.Missing) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s in %s", strings.Join(a.Missing, ", "), strings.Join(specDirs, ", "))
	if len(a.SpecErrors) > 0 {
		fmt.Fprintf(&b, " (spec problems: %s)", strings.Join(a.SpecErrors, "; "))
	}
	b.WriteString("; generate a CDI spec for this node's GPUs, e.g. `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`")
	return fmt.Errorf("%w: %s", gpu.ErrNoCDIDevice, b.String())
}
