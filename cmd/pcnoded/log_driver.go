package main

import (
	"github.com/spf13/cobra"

	"github.com/pcnode/pcnode/daemon/logs"
)

// newLogDriverCmd is the logging binary that the containerd shims of
// containers started by an older pcnoded still run (their binary:// log URI
// names pcnoded itself). New containers get cmd/pcnode-logd, which does the
// same with a fraction of the memory (logs.driver_path); this sub-command
// stays so that those containers keep their logs across the upgrade, and it
// can be configured as logs.driver_path to fall back to it.
func newLogDriverCmd() *cobra.Command {
	return &cobra.Command{
		Use:                logs.BinarySubcommand + " ARGS",
		Short:              "Capture a task's stdout/stderr (started by the containerd shim; internal)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return logs.RunBinary(cmd.Context(), args)
		},
	}
}
