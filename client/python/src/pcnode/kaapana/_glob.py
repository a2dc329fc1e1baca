"""target_glob syntax: Go's path.Match patterns per path segment (daemon/spec/scale.go)."""

from __future__ import annotations

from typing import Optional, Tuple

from pcnode.kaapana._spec import clip, go_quote


class _BadPattern(Exception):
    pass


def _python_class(seg: str) -> str:
    """Rewrites fnmatch's negated class "[!...]" as Go's "[^...]"."""
    if "[!" not in seg:
        return seg
    b = list(seg)
    i = 0
    while i < len(b):
        if b[i] == "\\":
            i += 1
        elif b[i] == "[" and i + 1 < len(b) and b[i + 1] == "!":
            b[i + 1] = "^"
        i += 1
    return "".join(b)


def _scan_chunk(pattern: str) -> Tuple[str, str]:
    while pattern.startswith("*"):
        pattern = pattern[1:]
    inrange = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif c == "[":
            inrange = True
        elif c == "]":
            inrange = False
        elif c == "*" and not inrange:
            break
        i += 1
    return pattern[:i], pattern[i:]


def _get_esc(chunk: str) -> str:
    if not chunk or chunk[0] in "-]":
        raise _BadPattern
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise _BadPattern
    rest = chunk[1:]
    if not rest:
        raise _BadPattern
    return rest


def _check_chunk(chunk: str) -> None:
    while chunk:
        c = chunk[0]
        if c == "[":
            chunk = chunk[1:]
            if chunk.startswith("^"):
                chunk = chunk[1:]
            nrange = 0
            while True:
                if chunk.startswith("]") and nrange > 0:
                    chunk = chunk[1:]
                    break
                chunk = _get_esc(chunk)
                if chunk[0] == "-":
                    chunk = _get_esc(chunk[1:])
                nrange += 1
        elif c == "\\":
            chunk = chunk[1:]
            if not chunk:
                raise _BadPattern
            chunk = chunk[1:]
        else:
            chunk = chunk[1:]


def _valid_match_pattern(pattern: str) -> bool:
    try:
        while pattern:
            chunk, pattern = _scan_chunk(pattern)
            _check_chunk(chunk)
    except _BadPattern:
        return False
    return True


def glob_problem(pattern: str) -> Optional[str]:
    """Says why a target_glob is not valid, or None (Go's compileGlob)."""
    if pattern == "":
        pattern = "*"
    if pattern.startswith("/"):
        return f"{go_quote(clip(pattern))} must be relative"
    for seg in pattern.split("/"):
        if seg == "":
            return f"{go_quote(clip(pattern))} has an empty path segment"
        if seg == "**":
            continue
        if not _valid_match_pattern(_python_class(seg)):
            return f"{go_quote(clip(pattern))} is not a valid glob (Go path.Match syntax): syntax error in pattern"
    return None
