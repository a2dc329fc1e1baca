package gpu

import "fmt"

// DefaultAppXIDs are XIDs caused by the application running on the GPU
// (faulting kernels, memory page faults, a stopped or killed context), not by
// the GPU itself. They do not make a GPU unhealthy.
var DefaultAppXIDs = []int{13, 31, 43, 45, 68, 109}

// xidDescriptions summarises the XIDs an operator meets most often, in our
// own words after NVIDIA's XID catalogue.
var xidDescriptions = map[int]string{
	8:   "GPU stopped responding (timeout)",
	13:  "graphics engine exception (application error)",
	31:  "GPU memory page fault (application error)",
	32:  "invalid or corrupted push buffer stream",
	38:  "driver firmware error",
	43:  "GPU stopped processing (application error)",
	45:  "preemptive cleanup after earlier errors",
	48:  "double-bit ECC error",
	61:  "internal micro-controller breakpoint",
	62:  "internal micro-controller halt",
	63:  "ECC page retirement or row remapping recorded",
	64:  "ECC page retirement or row remapping failed",
	68:  "video processor exception (application error)",
	69:  "graphics engine class error",
	74:  "NVLink error",
	79:  "GPU has fallen off the bus",
	92:  "high single-bit ECC error rate",
	94:  "contained ECC error",
	95:  "uncontained ECC error",
	109: "context switch timeout (application error)",
	119: "GSP RPC timeout",
	120: "GSP error",
	121: "C2C link error",
	140: "unrecovered ECC error",
}

// XIDDescription returns a one-line description of an XID code, e.g.
// "XID 79: GPU has fallen off the bus".
func XIDDescription(code int) string {
	if d, ok := xidDescriptions[code]; ok {
		return fmt.Sprintf("XID %d: %s", code, d)
	}
	return fmt.Sprintf("XID %d", code)
}
