package main

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/spf13/cobra"
)

// Output formats of the global -o/--output flag.
const (
	formatText = "text"
	formatJSON = "json"
)

// commandAdders register the subcommands of other files on the root: the
// offline commands are validate and resolve, the rest talk to pcnoded. A new
// file of commands adds its adder here (or appends from an init function).
var commandAdders = []func(root *cobra.Command){addDaemonCommands}

// newRootCmd builds the command tree.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "pcnode-cli",
		Short: "Admin CLI for pcnode: validate and resolve task specs, and talk to pcnoded",
		Long: "pcnode-cli validates processing-container.json and Kaapana task.json files, resolves a task\n" +
			"against its template offline, and talks to a pcnoded node daemon.\n\n" +
			"--address is a unix socket path or host:port; host:port is TLS 1.3 with --tls-ca, --tls-cert,\n" +
			"--tls-key and --tls-server-name. Each flag has a PCNODE_* environment equivalent\n" +
			"(PCNODE_ADDRESS, PCNODE_TLS_CA, PCNODE_TLS_CERT, PCNODE_TLS_KEY, PCNODE_TLS_SERVER_NAME);\n" +
			"a flag wins over its variable.\n\n" +
			"Exit status: 0 success, 1 invalid input or failure, 2 usage error; run exits with the task's exit code.",
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Suggest commands within two edits of an unknown one.
		SuggestionsMinimumDistance: 2,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				msg := "unknown command " + quote(args[0])
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					msg += "; did you mean " + strings.Join(s, " or ") + "?"
				}
				return usagef("%s", msg)
			}
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			_, err := outputFormat(cmd)
			return err
		},
	}
	root.PersistentFlags().StringP("output", "o", formatText, "output format: text or json")
	// Subcommands inherit this: every flag error is a usage error.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(newValidateCmd(), newResolveCmd())
	for _, add := range commandAdders {
		add(root)
	}
	usageArgs(root)
	return root
}

// usageArgs makes every positional-argument error in the tree a usage
// error (exit status 2), whoever wrote the command.
func usageArgs(c *cobra.Command) {
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				var ue *usageError
				if errors.As(err, &ue) {
					return err
				}
				return &usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}

// outputFormat returns the -o value, checked.
func outputFormat(cmd *cobra.Command) (string, error) {
	f, err := cmd.Flags().GetString("output")
	if err != nil {
		return "", err
	}
	switch f {
	case formatText, formatJSON:
		return f, nil
	}
	return "", usagef("-o/--output must be text or json, not %s", quote(f))
}

// exactArgs is cobra.ExactArgs reporting a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("want %s, got %d argument(s)", what, len(args))
		}
		return nil
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
