// Package schema owns pcnode's published JSON Schemas (draft 2020-12) for
// processing-container.json and Kaapana's task.json, embedded from the .json
// files beside this package, and validates documents against them.
//
// The schemas accept every document Kaapana's own schemas accept and add the
// env fields `type` and `adjustable`; they describe, not restrict, the fields
// pcnode ignores. Rules a schema cannot express (unique names, overlapping
// mounts, values within choices) are daemon/spec's validation; run both, as
// pcnode-cli validate does.
//
// The JSON Schema library compiles every draft's meta-schema when its
// package initialises (about 10 ms of CPU), so only cmd/pcnode-schema links
// this package; pcnode-cli runs that binary for its schema checks and so
// starts without paying for it.
package schema
