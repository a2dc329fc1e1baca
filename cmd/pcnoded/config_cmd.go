package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pcnode/pcnode/daemon/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Print or check pcnoded's configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print the documented default configuration (TOML)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), config.DefaultTOML)
			return err
		},
	})
	var path string
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate a configuration file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := config.Load(path); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", path)
			return err
		},
	}
	check.Flags().StringVar(&path, "config", config.DefaultPath, "configuration file")
	cmd.AddCommand(check)
	return cmd
}
