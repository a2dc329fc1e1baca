"""JSON decoding that keeps what the Go reader keeps: member order, duplicate
keys and the text of every number (so that ``25.0`` can be read as an integer
and ``1e3`` as a quantity exactly as Go reads them)."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple, Union

#: The largest processing-container.json or task.json accepted (Go's MaxFileSize).
MAX_FILE_SIZE = 4 << 20

#: How deep arrays and objects may nest (Go's maxDepth).
MAX_DEPTH = 64


class JNumber(str):
    """A JSON number, kept as its text."""


class JObject:
    """A JSON object: members in order, and the keys that appeared twice."""

    __slots__ = ("members", "dups")

    def __init__(self, pairs: List[Tuple[str, Any]]):
        self.members: List[Tuple[str, Any]] = pairs
        seen: set[str] = set()
        self.dups: List[str] = []
        for k, _ in pairs:
            if k in seen:
                self.dups.append(k)
            seen.add(k)

    def get(self, key: str) -> Any:
        for k, v in reversed(self.members):
            if k == key:
                return v
        return None


JValue = Union[None, bool, JNumber, str, List[Any], JObject]


class SyntaxProblem(ValueError):
    """The data is not one well-formed JSON value, or too large or deep."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode(data: Union[bytes, str]) -> JValue:
    """Reads exactly one JSON value, raising SyntaxProblem as Go's reader refuses."""
    if isinstance(data, str):
        raw = data.encode("utf-8", "surrogatepass")
    else:
        raw = bytes(data)
    if len(raw) > MAX_FILE_SIZE:
        raise SyntaxProblem(f"file too large: {len(raw)} bytes, at most {MAX_FILE_SIZE}")
    text = raw.decode("utf-8", "replace")  # Go's decoder replaces bad UTF-8 with U+FFFD
    try:
        v = json.loads(
            text,
            object_pairs_hook=JObject,
            parse_int=JNumber,
            parse_float=JNumber,
            parse_constant=_no_constant,
        )
    except RecursionError:
        raise SyntaxProblem(f"malformed JSON: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:
        raise SyntaxProblem(f"malformed JSON: {e}") from None
    if depth(v) > MAX_DEPTH + 1:
        raise SyntaxProblem(f"malformed JSON: nested deeper than {MAX_DEPTH} levels")
    return v


def depth(v: Any) -> int:
    """The nesting depth of a decoded value (a scalar is 1)."""
    best = 1
    stack: List[Tuple[Any, int]] = [(v, 1)]
    while stack:
        x, d = stack.pop()
        best = max(best, d)
        if isinstance(x, JObject):
            stack.extend((m, d + 1) for _, m in x.members)
        elif isinstance(x, list):
            stack.extend((m, d + 1) for m in x)
    return best


def from_plain(v: Any) -> JValue:
    """Turns an ordinary Python value (a dict from json.load or a DAG) into the tree."""
    if v is None or isinstance(v, (bool, JNumber)):
        return v
    if isinstance(v, JObject):
        return v
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return JNumber(str(v))
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise SyntaxProblem(f"malformed JSON: {v} is not a JSON number")
        return JNumber(json.dumps(v))
    if isinstance(v, dict):
        for k in v:
            if not isinstance(k, str):
                raise SyntaxProblem(f"malformed JSON: object key {k!r} is not a string")
        return JObject([(k, from_plain(x)) for k, x in v.items()])
    if isinstance(v, (list, tuple)):
        return [from_plain(x) for x in v]
    raise SyntaxProblem(f"malformed JSON: {type(v).__name__} is not a JSON value")


def to_plain(v: JValue) -> Any:
    """Turns the tree into ordinary Python values (the last duplicate key wins)."""
    if isinstance(v, JObject):
        out: Dict[str, Any] = {}
        for k, x in v.members:
            out[k] = to_plain(x)
        return out
    if isinstance(v, list):
        return [to_plain(x) for x in v]
    if isinstance(v, JNumber):
        s = str(v)
        if any(c in s for c in ".eE"):
            try:
                f = float(s)
            except OverflowError:  # pragma: no cover - float() returns inf
                f = float("inf")
            return f
        return int(s)
    return v


def kind(v: JValue) -> str:
    """The kind of a value as Go's messages name it."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, JNumber):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"
