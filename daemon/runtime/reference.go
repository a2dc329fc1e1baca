package runtime

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// NormalizeRef validates an image reference and returns it in the form
// containerd stores images under: domain and path made explicit, "latest"
// added when neither tag nor digest is given ("busybox" becomes
// "docker.io/library/busybox:latest"). A reference carrying both a tag and a
// digest keeps only the digest.
func NormalizeRef(ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidReference)
	}
	if len(ref) > maxRefLength || strings.TrimSpace(ref) != ref {
		return "", fmt.Errorf("%w %q", ErrInvalidReference, truncate(ref, 80))
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("%w %q: %s", ErrInvalidReference, truncate(ref, 80), err.Error())
	}
	return named.String(), nil
}

// refHost returns the registry host of a normalised reference.
func refHost(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("%w %q: %s", ErrInvalidReference, truncate(ref, 80), err.Error())
	}
	return reference.Domain(named), nil
}

// maxRefLength bounds a reference: a name is at most 255 characters, a tag
// 128 and a sha512 digest 135.
const maxRefLength = 512

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
