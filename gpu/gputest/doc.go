// Package gputest owns the test doubles of the gpu tree: go-nvml mock
// systems whose GPUs answer every query the tree makes (Server, built on
// go-nvml's own mock devices such as dgxa100), helpers to inject XID and ECC
// events into their event sets and to make any query fail (for example with
// ERROR_NOT_SUPPORTED), and a FakeClock for the health monitor.
//
// Only test code imports this package.
package gputest
