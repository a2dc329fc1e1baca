package daemon

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// hostCapacity returns the node's CPU (milli-cores) and memory (bytes).
// Memory is MemTotal from /proc/meminfo, lowered to the memory limit of the
// cgroup root as this process sees it (memory.max on cgroup v2,
// memory.limit_in_bytes on v1) when that is smaller: a node that is itself
// a container with a namespaced cgroup view.
func hostCapacity() (cpuMillis, memBytes int64, err error) {
	cpuMillis = int64(runtime.NumCPU()) * 1000
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	memBytes, err = parseMemTotal(b)
	if err != nil {
		return 0, 0, err
	}
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(p); err == nil {
			if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v > 0 && v < memBytes {
				memBytes = v
			}
		}
	}
	return cpuMillis, memBytes, nil
}

func parseMemTotal(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("meminfo: %w", err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("meminfo: no MemTotal")
}
