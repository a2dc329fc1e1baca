package daemon

// EnvTestGPUEvents names the environment variable that a daemon built with
// the crashpoints build tag (a test build, never a release) reads at start:
// a directory from which the static GPU backend's health source takes
// injected events, so that an end-to-end test can make a running pcnoded
// see an XID (gpuevents_on.go). Release builds ignore it (gpuevents_off.go).
//
// Each file named *.event in the directory is one event, the line
// "<uuid> <xid> <unix milliseconds>"; the daemon removes the file once it
// has read it, and logs and skips a malformed one.
const EnvTestGPUEvents = "PCNODE_TEST_GPU_EVENTS"
