// Package testimage owns the container images that pcnode's tests run: it
// compiles the test program (./testprog, "pctest"), lays it out as a
// one-layer image with a processing-container.json, writes that image as an
// OCI image-layout tarball or a docker-archive (docker save) tarball, and
// imports and unpacks archives into containerd. Only test code imports it;
// it is a normal package so that tests in every package can.
//
// # Basics
//
//	b, err := testimage.Build(ctx, testimage.Image{Name: "pcnode.test/dummy:1"})
//	err = b.WriteOCI(w)               // or b.WriteDockerArchive(w)
//	imgs, err := testimage.Import(ctx, c, r)  // containerd client; also unpacks
//
// and, inside a test, the short forms:
//
//	ctx, c := testimage.Connect(t, "")          // skips (or fails under make test) without containerd
//	img := testimage.Load(ctx, t, c, testimage.Image{})  // build, import, unpack; client.Image
//	path := testimage.Archive(t, testimage.Image{}, testimage.FormatDockerArchive)
//
// The image's single layer holds /pctest (Entrypoint ["/pctest"]),
// /usr/bin/python3 and /usr/bin/python (symbolic links to /pctest, for
// Kaapana's dummy templates), /processing-container.json (by default
// DefaultProcessingContainer, whose templates exercise every pctest step),
// /etc/passwd and /etc/group (root and nobody:nogroup, 65534), /root, /tmp
// (1777) and /home, plus whatever Image.Files adds. What pctest does is
// documented in testprog's package doc; the exact bytes it writes come from
// package pattern, so tests compute expected output and hashes without
// running anything.
//
// Everything is deterministic: the same Image gives the same layer,
// config and manifest digests (fixed timestamps, sorted entries), so
// importing an image twice is a no-op and digests can be asserted.
//
// # Caveats
//
// The test program is compiled with the `go` command on PATH (`go test`
// puts its own first) from this package's source directory, so tests need
// the module source, as `go test` always has. The binary is cached per source hash in
// the user cache directory and per test process in memory.
//
// Import unpacks for the client's default snapshotter (overlayfs on Linux);
// the private containerd of `make test` (deploy/dev/test.sh) is containerd
// 1.6 driven by the v2 Go client.
package testimage
