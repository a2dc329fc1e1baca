// Package client owns the Go client of pcnoded's v1 API: dialling a node
// (unix socket by default), and turning gRPC status errors back into Go
// errors that keep the code and every field violation; and Pool, which
// places tasks across many nodes by their advertised capacity, fails over
// only where that cannot run a task twice, and follows each task on its
// node. It depends only on the generated API; it never imports daemon/,
// store/ or gpu/.
package client
