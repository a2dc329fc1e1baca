package daemontest

import _ "embed"

// kaapanaDummy is Kaapana's dummy processing-container.json, copied
// unchanged from kaapana/dummy (shared/kaapana/dummy beside the repository)
// so that the tests do not depend on that directory.
//
//go:embed testdata/kaapana-dummy-processing-container.json
var kaapanaDummy []byte

// KaapanaDummyProcessingContainer returns (a copy of) Kaapana's dummy
// processing-container.json: templates "upstream" (outputs channel1 and
// channel2 at /home/upstream/…, command python3 -u upstream.py) and
// "downstream" (the same channels as inputs at /home/downstream/…, command
// python3 -u downstream.py), both with env TIME_SLEEP (default "5"). The
// test program answers both commands (see internal/testimage/testprog).
func KaapanaDummyProcessingContainer() []byte {
	return append([]byte(nil), kaapanaDummy...)
}
