package testimage

import (
	_ "embed"
	"os"
	"path/filepath"
)

//go:embed processing-container.json
var defaultProcessingContainer []byte

// DefaultProcessingContainer returns (a copy of) the processing-container.json
// of the default test image (this package's processing-container.json).
// Its templates, each a pctest command parameterised through env:
//
//	steps           PCTEST_STEPS (default "env") run as pctest steps
//	env             print env; GREETING, MODE (choices fast|slow), COUNT (integer),
//	                RATIO (number), VERBOSE (boolean), FIXED (not adjustable)
//	copy            input in (/data/in) listed, then copied to output out (/data/out)
//	transform       in (/data/in) upper-cased into out (/data/out)
//	multi           in1→out1 copied, in2→out2 upper-cased (/data/in1 …)
//	write-output    BYTES (1Mi) pattern bytes into /data/out/$FILE (result.bin)
//	stdout, stderr  BYTES (1Mi) pattern bytes to the stream
//	alloc           BYTES (64Mi) resident for HOLD (1s); requests 32Mi, limits 128Mi
//	spin            burn a CPU for DURATION (2s); cpu request and limit 500m
//	sleep           DURATION (60s); SIGTERM → 143
//	ignore-sigterm  DURATION (60s), SIGTERM ignored
//	exit            exit CODE (3)
//	scaled          ls /data/in; limit 50Mi, scale rule sum ×10 over in's *.txt
//	gpu             env with limits nvidia.com/gpu: 1
//	upstream        Kaapana dummy upstream (python3 -u upstream.py), TIME_SLEEP 0
//	downstream      Kaapana dummy downstream (python3 -u downstream.py)
func DefaultProcessingContainer() []byte {
	return append([]byte(nil), defaultProcessingContainer...)
}

// KaapanaDummyProcessingContainer reads Kaapana's dummy
// processing-container.json from the repository's copy of Kaapana's example
// files (daemon/spec/testdata/kaapana/dummy), for tests that run Kaapana's
// own templates on the test program.
func KaapanaDummyProcessingContainer() ([]byte, error) {
	dir, err := sourceDir()
	if err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(dir, "..", "..", "daemon", "spec", "testdata", "kaapana", "dummy", "processing-container.json"))
}
