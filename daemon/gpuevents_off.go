//go:build !crashpoints

package daemon

import "github.com/pcnode/pcnode/gpu/health"

// testGPUSource returns src: release builds take no injected GPU events.
func testGPUSource(src health.Source) health.Source { return src }
