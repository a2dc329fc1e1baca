"""Image references as pcnode's daemon checks them (github.com/distribution/reference
v0.6.0's ParseNormalizedNamed and go-digest's Validate), in Python."""

from __future__ import annotations

import re
from typing import Optional

_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_HOST = r"(?:" + _DOMAIN_NAME + r"|\[(?:[a-fA-F0-9:]+)\])"
_DOMAIN_AND_PORT = _HOST + r"(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}"
_PATH_COMPONENT = _ALNUM + r"(?:" + _SEP + _ALNUM + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME

_REFERENCE = re.compile(r"(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?", re.ASCII)
_ANCHORED_NAME = re.compile(r"(?:(" + _DOMAIN_AND_PORT + r")/)?(" + _REMOTE_NAME + r")", re.ASCII)
_IDENTIFIER = re.compile(r"[a-f0-9]{64}", re.ASCII)
_DIGEST_ANCHORED = re.compile(_DIGEST, re.ASCII)
_ENCODED = {"sha256": 64, "sha384": 96, "sha512": 128}

_NAME_TOTAL_LENGTH_MAX = 255


def _split_docker_domain(name: str) -> tuple[str, str]:
    maybe_domain, sep, maybe_remote = name.partition("/")
    if not sep:
        return "docker.io", "library/" + name
    if maybe_domain == "localhost":
        domain, remote = maybe_domain, maybe_remote
    elif maybe_domain == "index.docker.io":
        domain, remote = "docker.io", maybe_remote
    elif "." in maybe_domain or ":" in maybe_domain:
        domain, remote = maybe_domain, maybe_remote
    elif maybe_domain.lower() != maybe_domain:
        domain, remote = maybe_domain, maybe_remote
    else:
        domain, remote = "docker.io", name
    if domain == "docker.io" and "/" not in remote:
        remote = "library/" + remote
    return domain, remote


def _digest_problem(d: str) -> Optional[str]:
    i = d.find(":")
    if i <= 0 or i + 1 == len(d):
        return "invalid checksum digest format"
    algorithm, encoded = d[:i], d[i + 1 :]
    if algorithm not in _ENCODED:
        if not _DIGEST_ANCHORED.fullmatch(d):
            return "invalid checksum digest format"
        return "unsupported digest algorithm"
    if re.fullmatch(r"[a-f0-9]{%d}" % _ENCODED[algorithm], encoded, re.ASCII) is None:
        return "invalid checksum digest length"
    return None


def _parse(s: str) -> Optional[str]:
    m = _REFERENCE.fullmatch(s)
    if m is None:
        if s == "":
            return "repository name must have at least one component"
        if _REFERENCE.fullmatch(s.lower()) is not None:
            return "repository name must be lowercase"
        return "invalid reference format"
    nm = _ANCHORED_NAME.fullmatch(m.group(1))
    path = nm.group(2) if nm is not None else m.group(1)
    if len(path) > _NAME_TOTAL_LENGTH_MAX:
        return f"repository name must not be more than {_NAME_TOTAL_LENGTH_MAX} characters"
    if m.group(3):
        return _digest_problem(m.group(3))
    return None


def image_problem(ref: str) -> Optional[str]:
    """Says why ref is not an image reference, or None (ParseNormalizedNamed)."""
    if _IDENTIFIER.fullmatch(ref):
        return f"invalid repository name ({ref}), cannot specify 64-byte hexadecimal strings"
    domain, remainder = _split_docker_domain(ref)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        return f"invalid reference format: repository name ({remote}) must be lowercase"
    return _parse(domain + "/" + remainder)
