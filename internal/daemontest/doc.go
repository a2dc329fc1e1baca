// Package daemontest owns running pcnoded as a real process for end-to-end
// tests: building the binary once per test process, writing its TOML
// configuration, starting it with a private state directory, API socket and
// containerd namespace, and driving it through the real gRPC API. It also
// serves test images from an in-process OCI registry with basic auth
// (Registry) or bearer tokens from a token realm on any loopback address
// (TokenRealm), builds hostile image archives (GzipBomb, GzipLayerBomb,
// WithLayer), and makes real X.509 certificates at test time (tls.go: a CA,
// server and client certificates, expired and not-yet-valid ones) for the
// TCP listener with mutual TLS that Options.TCP turns on. Only test code
// imports it; it is a normal package so that tests
// in every package can.
//
// # Basics
//
//	d := daemontest.Start(t, daemontest.Options{})   // skips (or fails under make test) without containerd
//	img := d.ImportImage(t, testimage.Image{})         // through ImageService.ImportImage
//	task := d.Run(t, &pcnodev1.TaskSpec{Image: img.GetName(), ...})
//	d.Restart(t)                                       // same state dir, socket and namespace
//
//	d := daemontest.Start(t, daemontest.Options{TCP: true})  // also mTLS on 127.0.0.1
//	cert := d.CA.Client(t, daemontest.CertOptions{URI: []string{"spiffe://test/x"}})
//	conn := d.DialTLS(t, daemontest.ClientTLS(d.CA.Pool(), cert))
//
//	c := daemontest.StartContainerd(t)                 // a containerd of the test's own
//	d := daemontest.Start(t, daemontest.Options{Containerd: c})
//	c.Stop(t); c.Kill(t); c.Start(t)                   // SIGTERM, SIGKILL, start again on the same dirs
//
// Start skips the test (or fails it under `make test`) when the private
// containerd of testenv is missing. The daemon is stopped with SIGTERM when
// the test ends; then every container, image and snapshot left in the test's
// containerd namespace is removed and the namespace deleted, so tests never
// see each other's images or containers.
//
// StartContainerd writes its configuration, root, state and socket in a
// temporary directory of its own, as deploy/dev/test.sh does (CRI
// disabled); when the test ends it kills and deletes every task (starting
// containerd again if it is down), stops containerd, kills its remaining
// shims and unmounts what is left below its directory.
//
// pcnoded's stderr is written to pcnoded.log in the test's temporary
// directory and kept in memory (Daemon.Logs); when a test fails, the last
// part of it is written to the test log.
//
// # The binary
//
// The binary is built with `go build -race` from the module that holds this
// package, once per test process, into a directory of the system temporary
// directory named after the process id; directories of processes that have
// ended are removed by the next build. Options.NoRace asks for a build
// without the race detector (see there why timing tests want it).
// PCNODE_TEST_PCNODED names a prebuilt binary to use instead of either.
//
// # Caveats
//
// The daemon is a child of the test process: a test binary killed by
// `go test -timeout` leaves it running. Containers it started keep running
// too (that is the daemon's contract); the namespace clean-up of the next
// run does not reach them, since every test uses a fresh namespace.
package daemontest
