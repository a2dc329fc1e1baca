// Package storetest owns the behaviour every store.Store must have: one test
// suite, Run, that package store runs against both its bbolt and in-memory
// implementations, and that any other implementation can run too. Only test
// code imports it.
package storetest
