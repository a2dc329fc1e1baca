// Package pattern owns the deterministic bytes that the test program
// (internal/testimage/testprog) writes, so that tests can compute exactly
// what a container must have produced without running it: the stream
// pattern behind write-stdout, write-stderr and write-file, and the files
// the emulated Kaapana dummy "upstream" step writes.
//
// # The stream pattern
//
// The pattern is an endless sequence of 64-byte lines. Line i (from 0) is
// the line number as ten zero-padded decimal digits, a space, 52 characters
// of an alphabet rotated by i, and a newline. The first n bytes of that
// sequence are what "write N bytes" means everywhere in the harness, so
// output cut short, duplicated or reordered shows up as a different sha256
// and as a line number out of place.
//
// It has no dependencies beyond the standard library so that the test
// program, which imports it, stays small and static.
package pattern
