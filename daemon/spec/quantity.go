package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Resource names understood in the resources of a template or task.
const (
	ResourceMemory = "memory"
	ResourceCPU    = "cpu"
	ResourceGPU    = "nvidia.com/gpu"
)

// Upper bounds that keep every quantity far from int64 overflow.
const (
	// MaxMemoryBytes is the largest memory quantity accepted (4 EiB).
	MaxMemoryBytes = int64(1) << 62
	// MaxCPUMillis is the largest CPU quantity accepted, in milli-CPU.
	MaxCPUMillis = int64(1) << 50
	// MaxGPUs is the largest GPU count accepted.
	MaxGPUs = int64(math.MaxInt32)
)

// ParseQuantity reads a Kubernetes quantity ("500Mi", "1.5Gi", "2", "500m",
// "1e3") for the named resource and returns it in pcnode's unit: bytes for
// memory, milli-CPU for cpu (both rounded up), a whole count for
// nvidia.com/gpu. Negative or out-of-range values and fractional GPUs are
// errors wrapping [ErrQuantity]; so is an unknown resource name.
func ParseQuantity(name, s string) (int64, error) {
	if err := screenQuantity(s); err != nil {
		return 0, err
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not a Kubernetes quantity (e.g. 500Mi, 1.5Gi, 2, 500m)", ErrQuantity, s)
	}
	if q.Sign() < 0 {
		return 0, fmt.Errorf("%w: %q is negative", ErrQuantity, s)
	}
	switch name {
	case ResourceMemory:
		if q.Cmp(*resource.NewQuantity(MaxMemoryBytes, resource.BinarySI)) > 0 {
			return 0, fmt.Errorf("%w: %q is more than 4Ei", ErrQuantity, s)
		}
		return q.Value(), nil
	case ResourceCPU:
		if q.Cmp(*resource.NewMilliQuantity(MaxCPUMillis, resource.DecimalSI)) > 0 {
			return 0, fmt.Errorf("%w: %q is more CPU than any node has", ErrQuantity, s)
		}
		return q.MilliValue(), nil
	case ResourceGPU:
		if q.Cmp(*resource.NewQuantity(MaxGPUs, resource.DecimalSI)) > 0 {
			return 0, fmt.Errorf("%w: %q is more GPUs than any node has", ErrQuantity, s)
		}
		n := q.Value()
		if q.Cmp(*resource.NewQuantity(n, resource.DecimalSI)) != 0 {
			return 0, fmt.Errorf("%w: %q is not a whole number of GPUs", ErrQuantity, s)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%w: unknown resource %q", ErrQuantity, name)
}

// maxQuantityLen bounds a quantity's text; no sensible quantity is longer.
const maxQuantityLen = 64

// maxExponent bounds a quantity's decimal exponent ("1e30"): anything
// larger is out of range for every resource, and apimachinery's arithmetic
// on exponents like 1e999999999 takes minutes (a file could stall the
// daemon).
const maxExponent = 30

// screenQuantity refuses, cheaply, what resource.ParseQuantity would take
// too long over.
func screenQuantity(s string) error {
	if len(s) > maxQuantityLen {
		return fmt.Errorf("%w: %.20q… is longer than %d characters", ErrQuantity, s, maxQuantityLen)
	}
	i := strings.IndexAny(s, "eE")
	if i < 0 || i+1 >= len(s) {
		return nil // no exponent ("E" alone is the exa suffix)
	}
	exp, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return nil // not an exponent form; ParseQuantity decides
	}
	if exp > maxExponent || exp < -maxExponent {
		return fmt.Errorf("%w: %q: exponent %d is out of range (at most ±%d)", ErrQuantity, s, exp, maxExponent)
	}
	return nil
}

// FormatBytes writes a byte count the way Kubernetes would, e.g. "50Mi".
func FormatBytes(n int64) string {
	return resource.NewQuantity(n, resource.BinarySI).String()
}

// FormatMillis writes a milli-CPU count the way Kubernetes would, e.g. "500m" or "2".
func FormatMillis(n int64) string {
	return resource.NewMilliQuantity(n, resource.DecimalSI).String()
}
