package daemontest

import "github.com/pcnode/pcnode/internal/testimage"

// KaapanaDummyProcessingContainer returns Kaapana's dummy
// processing-container.json (the copy in daemon/spec/testdata): templates
// "upstream" (outputs channel1 and channel2 at /home/upstream/…, command
// python3 -u upstream.py) and "downstream" (the same channels as inputs at
// /home/downstream/…, command python3 -u downstream.py), both with env
// TIME_SLEEP (default "5"). The test program answers both commands (see
// internal/testimage/testprog). It panics if the file cannot be read.
func KaapanaDummyProcessingContainer() []byte {
	b, err := testimage.KaapanaDummyProcessingContainer()
	if err != nil {
		panic(err)
	}
	return b
}
