// Package storetest owns the behaviour every store.Store must have: one test
// suite, Run, and the suite of revisions and the history, RunRevisions
// (which needs stores opened with a given history length), that package
// store runs against both its bbolt and in-memory implementations, and that
// any other implementation can run too. Only test code imports it.
package storetest
