package main

import (
	"github.com/spf13/cobra"

	"github.com/pcnode/pcnode/daemon/logs"
)

// newLogDriverCmd is the logging binary the containerd shim starts for each
// task (containerd's binary:// log URI). It runs outside the daemon process,
// so a daemon restart loses no output.
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
