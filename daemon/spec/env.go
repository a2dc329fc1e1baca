package spec

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// LookupEnv returns the value of an environment variable and whether it is
// set. os.LookupEnv is one; tests and the daemon pass their own.
type LookupEnv func(name string) (string, bool)

// MapEnv is a LookupEnv over a fixed set of variables.
func MapEnv(vars map[string]string) LookupEnv {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// SubstituteEnv replaces every `{{ env.NAME }}` in s (any whitespace, or
// none, inside the braces) with the value lookup gives for NAME, as
// Kaapana's CLI does with Jinja. A variable lookup does not know is an error
// wrapping [ErrMissingEnv]; `{{` that does not open such a placeholder is an
// error wrapping [ErrPlaceholder]. Substituted values are not scanned again.
// With a nil lookup s is returned unchanged once its placeholders are checked.
func SubstituteEnv(s string, lookup LookupEnv) (string, error) {
	out, _, missing, err := substitute(s, lookup)
	if err != nil {
		return "", err
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: %s", ErrMissingEnv, strings.Join(missing, ", "))
	}
	return out, nil
}

// substitute does the work of SubstituteEnv and also returns the variables
// named and the ones lookup lacks (each once, in order).
func substitute(s string, lookup LookupEnv) (out string, vars, missing []string, err error) {
	if !strings.Contains(s, "{{") {
		return s, nil, nil, nil
	}
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 {
			return "", nil, nil, fmt.Errorf("%w: %q has no closing }}", ErrPlaceholder, clip(rest[i:]))
		}
		inner := rest[i+2 : i+2+j]
		name, ok := strings.CutPrefix(strings.TrimSpace(inner), "env.")
		if !ok || !validEnvName(name) {
			return "", nil, nil, fmt.Errorf("%w: {{%s}} (only {{ env.NAME }} is supported)", ErrPlaceholder, clip(inner))
		}
		if !slices.Contains(vars, name) {
			vars = append(vars, name)
		}
		switch {
		case lookup == nil:
			b.WriteString(rest[i : i+2+j+2])
		default:
			v, ok := lookup(name)
			if !ok && !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
			b.WriteString(v)
		}
		rest = rest[i+2+j+2:]
	}
	return b.String(), vars, missing, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	const n = 40
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// validEnvName reports whether s is a POSIX environment variable name.
func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// secretNameRE is the shape of a node secret's name: a file name in the
// daemon's [secrets] dir, never "." or "..", never hidden.
var secretNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// CheckSecretName says why name cannot name a node secret, or "".
func CheckSecretName(name string) string {
	if !secretNameRE.MatchString(name) {
		return fmt.Sprintf("%q is not a secret name ([A-Za-z0-9][A-Za-z0-9._-]{0,62})", clip(name))
	}
	return ""
}
