// Package specpb owns the conversions between daemon/spec's Go types and the
// v1 API's messages: a Kaapana task.json parsed by spec becomes a
// pcnodev1.TaskSpec (pcnode-cli submit), a TaskSpec from the API becomes a
// spec.Task (pcnoded), and resolved instances, templates and problems go back
// out. It holds no logic beyond mapping fields and enums.
package specpb
