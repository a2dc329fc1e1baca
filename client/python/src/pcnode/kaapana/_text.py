"""Names and placeholders: daemon/spec/text.go and env.go in Python."""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, List, Optional, Tuple

from pcnode.kaapana._spec import clip

LookupEnv = Optional[Callable[[str], Optional[str]]]


def _is_bidi_control(cp: int) -> bool:
    return cp in (0x061C, 0x200E, 0x200F) or 0x202A <= cp <= 0x202E or 0x2066 <= cp <= 0x2069


def _bad_rune(ch: str) -> str:
    cp = ord(ch)
    if 0x20 <= cp < 0x7F:
        return ""
    if 0xD800 <= cp <= 0xDFFF:
        return "surrogate"
    cat = unicodedata.category(ch)
    if cat == "Cc":
        return "control character"
    if _is_bidi_control(cp):
        return "bidirectional control character"
    if cat == "Cf":
        return "invisible format character"
    if cat in ("Zl", "Zp"):
        return "line or paragraph separator"
    return ""


def check_name(s: str) -> str:
    """Says why s cannot appear in a name or a path, or "" (Go's CheckName)."""
    for ch in s:
        why = _bad_rune(ch)
        if why == "surrogate":
            return "is not valid UTF-8"
        if why:
            return f"contains {why} U+{ord(ch):04X}"
    return ""


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


def valid_env_name(s: str) -> bool:
    """Whether s is a POSIX environment variable name."""
    return _ENV_NAME.fullmatch(s) is not None


class PlaceholderError(ValueError):
    """A `{{` that does not open a well-formed `{{ env.NAME }}`."""


def substitute(s: str, lookup: LookupEnv) -> Tuple[str, List[str], List[str]]:
    """Replaces `{{ env.NAME }}` placeholders as Go's substitute does.

    Returns the text, the variables named and those lookup lacks (each once,
    in order). With lookup None the placeholders stay as they are.
    """
    if "{{" not in s:
        return s, [], []
    out: List[str] = []
    names: List[str] = []
    missing: List[str] = []
    rest = s
    while True:
        i = rest.find("{{")
        if i < 0:
            out.append(rest)
            break
        out.append(rest[:i])
        j = rest.find("}}", i + 2)
        if j < 0:
            raise PlaceholderError(f"unsupported placeholder: {clip(rest[i:])!r} has no closing }}}}")
        inner = rest[i + 2 : j]
        stripped = inner.strip()
        name = stripped[len("env.") :] if stripped.startswith("env.") else None
        if name is None or not valid_env_name(name):
            raise PlaceholderError(f"unsupported placeholder: {{{{{clip(inner)}}}}} (only {{{{ env.NAME }}}} is supported)")
        if name not in names:
            names.append(name)
        if lookup is None:
            out.append(rest[i : j + 2])
        else:
            v = lookup(name)
            if v is None:
                if name not in missing:
                    missing.append(name)
                v = ""
            out.append(v)
        rest = rest[j + 2 :]
    return "".join(out), names, missing
