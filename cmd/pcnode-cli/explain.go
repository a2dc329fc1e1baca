package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"

	"github.com/pcnode/pcnode/client"
)

// hintedError is a failed call with advice on what to do next, printed on
// the lines after the error.
type hintedError struct {
	err  error
	hint string
}

func (e *hintedError) Error() string { return e.err.Error() + "\n" + e.hint }
func (e *hintedError) Unwrap() error { return e.err }

// Roles, as pcnoded maps identities to them.
const (
	roleViewer    = "viewer"
	roleSubmitter = "submitter"
	roleAdmin     = "admin"
)

// commandRoles is the role each command's calls need; commands not listed
// only read (viewer).
var commandRoles = map[string]string{
	"pcnode-cli submit":       roleSubmitter,
	"pcnode-cli run":          roleSubmitter,
	"pcnode-cli cancel":       roleSubmitter,
	"pcnode-cli image pull":   roleSubmitter,
	"pcnode-cli image import": roleSubmitter,
	"pcnode-cli image rm":     roleAdmin,
	"pcnode-cli node drain":   roleAdmin,
	"pcnode-cli node resume":  roleAdmin,
}

func neededRole(cmd *cobra.Command) string {
	if r, ok := commandRoles[cmd.CommandPath()]; ok {
		return r
	}
	return roleViewer
}

// explain adds what to do next to an error from a call to the node at t.
func explain(err error, t target, cmd *cobra.Command) error {
	var ae *client.Error
	if !errors.As(err, &ae) {
		return err
	}
	addr := fmt.Sprintf("%s (from %s)", t.address.value, t.address.source)
	var hint string
	switch ae.Code {
	case codes.Unavailable:
		hint = unreachableHint(ae.Message, t, addr)
	case codes.PermissionDenied:
		hint = permissionHint(ae, t, cmd)
	case codes.Unauthenticated:
		hint = "hint: the node does not know who you are: over TCP present a client certificate signed by a CA it trusts (--tls-cert/--tls-key)"
	case codes.InvalidArgument:
		if len(ae.Violations) > 0 {
			hint = "hint: fix the field(s) listed above and try again"
		}
	case codes.FailedPrecondition:
		if strings.Contains(ae.Message, "draining") {
			hint = "hint: the node admits no new tasks until an admin runs 'pcnode-cli node resume'; submit to another node meanwhile"
		}
	case codes.ResourceExhausted:
		hint = "hint: the request exceeds a limit the node enforces (named above); make it smaller or ask the node's admin to raise the limit"
	case codes.DeadlineExceeded:
		hint = fmt.Sprintf("hint: %s did not answer in time; check that it is not overloaded", addr)
	}
	if hint == "" {
		return err
	}
	return &hintedError{err: err, hint: hint}
}

// permissionHint says which role a denied command needs and which
// [[api.roles]] identity and role in pcnoded.toml would grant it. The daemon's
// ErrorInfo (reason ROLE_REQUIRED) names the caller's identity and the role
// needed; without it the hint says how the node names the caller.
func permissionHint(ae *client.Error, t target, cmd *cobra.Command) string {
	role := neededRole(cmd)
	if r := ae.Metadata["required_role"]; ae.Reason == reasonRoleRequired && r != "" {
		role = r
	}
	need := fmt.Sprintf("the %s role (or higher)", role)
	if cmd.CommandPath() == "pcnode-cli cancel" {
		need = "the submitter role for your own tasks and admin for another identity's"
	}
	hint := fmt.Sprintf("hint: %s needs %s on the node", cmd.CommandPath(), need)
	if id := ae.Metadata["identity"]; ae.Reason == reasonRoleRequired && id != "" {
		has := ae.Metadata["role"]
		if has == "" {
			has = "none"
		}
		return fmt.Sprintf("%s; you are %s (role %s). Ask the node's admin to add to pcnoded.toml:\n  [[api.roles]]\n  identity = %s\n  role = %s",
			hint, id, has, quote(id), quote(role))
	}
	who := "your client certificate's identity (its first URI SAN, else dns:NAME of its first DNS SAN, else cn:NAME of its CN)"
	if t.unix {
		who = fmt.Sprintf("your uid or a group of yours (identity \"uid:%d\" or \"gid:%d\")", os.Getuid(), os.Getgid())
	}
	return fmt.Sprintf("%s; ask its admin to bind %s to that role with [[api.roles]] identity and role in pcnoded.toml", hint, who)
}

// reasonRoleRequired is the ErrorInfo reason of a call refused for its
// caller's role.
const reasonRoleRequired = "ROLE_REQUIRED"

// unreachableHint says why a node could not be reached and what to check,
// from the transport's error text.
func unreachableHint(msg string, t target, addr string) string {
	switch {
	case strings.Contains(msg, "no such file or directory"):
		return fmt.Sprintf("hint: there is no socket at %s: is pcnoded running on this machine (systemctl status pcnoded)? Set --%s or $%s to its socket ([api] socket in pcnoded.toml) or to host:port of a remote node",
			addr, flagAddress, envAddress)
	case strings.Contains(msg, "permission denied") && t.unix:
		return fmt.Sprintf("hint: you may not open the socket %s: join the group that owns it (ls -l %s) or run as root", addr, t.address.value)
	case strings.Contains(msg, "certificate signed by unknown authority"), strings.Contains(msg, "failed to verify certificate"):
		ca := "the system roots"
		if t.ca.value != "" {
			ca = fmt.Sprintf("%s (from %s)", t.ca.value, t.ca.source)
		}
		if strings.Contains(msg, "is valid for") || strings.Contains(msg, "doesn't contain any IP SANs") {
			return fmt.Sprintf("hint: the node's certificate does not name the host you dialled: set --%s ($%s) to a name the certificate holds, or dial that name", flagTLSServerName, envTLSServerName)
		}
		if strings.Contains(msg, "expired") || strings.Contains(msg, "not yet valid") {
			return "hint: the node's certificate is expired or not yet valid: check the clocks and have it renewed"
		}
		return fmt.Sprintf("hint: the node's certificate is not signed by a CA in %s: set --%s ($%s) to the CA bundle that signed it (the issuer of the node's [api] tls_cert_file)", ca, flagTLSCA, envTLSCA)
	case !t.unix && (strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate") ||
		strings.Contains(msg, "unknown certificate") || strings.Contains(msg, "certificate expired") ||
		strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection reset")):
		// The node refused the client's certificate. With TLS 1.3 that
		// may arrive as an alert or as a connection closed under the
		// client's first write; Go's client sends no certificate at all
		// when the node's list of acceptable CAs lacks its issuer.
		if t.cert.value == "" {
			return fmt.Sprintf("hint: %s requires a client certificate (mutual TLS): set --%s and --%s ($%s, $%s)",
				addr, flagTLSCert, flagTLSKey, envTLSCert, envTLSKey)
		}
		return fmt.Sprintf("hint: %s refused (or closed the connection on) your client certificate %s (from %s): it must be signed by a CA in the node's client CA bundle ([api] client_ca_file) and be valid now",
			addr, t.cert.value, t.cert.source)
	case strings.Contains(msg, "first record does not look like a TLS handshake"), strings.Contains(msg, "tls:"):
		return fmt.Sprintf("hint: the TLS handshake with %s failed: is that pcnoded's TLS port ([api] tcp_address in pcnoded.toml)?", addr)
	}
	return fmt.Sprintf("hint: is pcnoded running and listening on %s? Check the address (--%s or $%s) and, for host:port, that the port is reachable from here",
		addr, flagAddress, envAddress)
}
