"""Kubernetes resource quantities, read as pcnode's daemon reads them.

``parse_quantity("memory", "1.5Gi")`` gives bytes, ``parse_quantity("cpu",
"500m")`` milli-CPU (both rounded up), ``parse_quantity("nvidia.com/gpu", "2")``
a whole count. The grammar is Kubernetes' (k8s.io/apimachinery's
ParseQuantity): an optional sign, digits with an optional fraction, then a
binary suffix (Ki Mi Gi Ti Pi Ei), a decimal one (n u m k M G T P E) or a
decimal exponent (e3, E-2).
"""

from __future__ import annotations

from fractions import Fraction
from math import ceil

from pcnode.kaapana._spec import RESOURCE_CPU, RESOURCE_GPU, RESOURCE_MEMORY

__all__ = [
    "MAX_CPU_MILLIS",
    "MAX_GPUS",
    "MAX_MEMORY_BYTES",
    "QuantityError",
    "format_bytes",
    "format_millis",
    "parse_quantity",
]

#: The largest memory quantity accepted (4 EiB).
MAX_MEMORY_BYTES = 1 << 62
#: The largest CPU quantity accepted, in milli-CPU.
MAX_CPU_MILLIS = 1 << 50
#: The largest GPU count accepted.
MAX_GPUS = (1 << 31) - 1

_MAX_QUANTITY_LEN = 64
_MAX_EXPONENT = 30

_DECIMAL = {"": 0, "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_SUFFIX_CHARS = "eEinumkKMGTP"
_DIGITS = "0123456789"


class QuantityError(ValueError):
    """A quantity that cannot be read or is out of range."""


def _screen(s: str) -> None:
    if len(s.encode()) > _MAX_QUANTITY_LEN:
        raise QuantityError(f"invalid quantity: {s[:20]!r}… is longer than {_MAX_QUANTITY_LEN} characters")
    i = min((s.find(c) for c in "eE" if c in s), default=-1)
    if i < 0 or i + 1 >= len(s):
        return
    try:
        exp = _go_atoi(s[i + 1 :])
    except ValueError:
        return
    if exp > _MAX_EXPONENT or exp < -_MAX_EXPONENT:
        raise QuantityError(f"invalid quantity: {s!r}: exponent {exp} is out of range (at most ±{_MAX_EXPONENT})")


def _go_atoi(s: str) -> int:
    """strconv.Atoi: an optional sign and ASCII digits, nothing else."""
    body = s[1:] if s[:1] in ("+", "-") else s
    if not body or any(c not in _DIGITS for c in body):
        raise ValueError(s)
    return int(s)


def _parse_k8s(s: str) -> Fraction:
    """The value of a Kubernetes quantity string, exactly; ValueError if it is not one."""
    if s == "":
        raise ValueError("empty")
    if s == "0":
        return Fraction(0)
    pos, end = 0, len(s)
    positive = True
    if s[0] == "-":
        positive = False
        pos = 1
    elif s[0] == "+":
        pos = 1
    start = pos
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    num = s[start:pos] or "0"
    denom = ""
    if pos < end and s[pos] == ".":
        pos += 1
        dstart = pos
        while pos < end and s[pos] in _DIGITS:
            pos += 1
        denom = s[dstart:pos]
    suffix_start = pos
    while pos < end and s[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and s[pos] in "+-":
        pos += 1
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    if pos != end:
        raise ValueError("bad format")
    suffix = s[suffix_start:]
    value = Fraction(int(num + denom), 10 ** len(denom)) if denom else Fraction(int(num))
    if suffix in _DECIMAL:
        value *= Fraction(10) ** _DECIMAL[suffix]
    elif suffix in _BINARY:
        value *= 2 ** _BINARY[suffix]
    elif len(suffix) > 1 and suffix[0] in "eE":
        exp = _go_atoi(suffix[1:])
        value *= Fraction(10) ** exp
    else:
        raise ValueError("bad suffix")
    if value != 0:
        # Kubernetes rounds a non-zero value up to a whole number of nano-units.
        value = Fraction(ceil(value * 10**9), 10**9)
    return value if positive else -value


def parse_quantity(name: str, s: str) -> int:
    """Reads a quantity for the named resource in pcnode's unit (see the module doc).

    Raises QuantityError for bad syntax, a negative or out-of-range value, a
    fractional GPU count, or an unknown resource name.
    """
    _screen(s)
    try:
        q = _parse_k8s(s)
    except ValueError:
        raise QuantityError(f"invalid quantity: {s!r} is not a Kubernetes quantity (e.g. 500Mi, 1.5Gi, 2, 500m)") from None
    if q < 0:
        raise QuantityError(f"invalid quantity: {s!r} is negative")
    if name == RESOURCE_MEMORY:
        if q > MAX_MEMORY_BYTES:
            raise QuantityError(f"invalid quantity: {s!r} is more than 4Ei")
        return ceil(q)
    if name == RESOURCE_CPU:
        if q * 1000 > MAX_CPU_MILLIS:
            raise QuantityError(f"invalid quantity: {s!r} is more CPU than any node has")
        return ceil(q * 1000)
    if name == RESOURCE_GPU:
        if q > MAX_GPUS:
            raise QuantityError(f"invalid quantity: {s!r} is more GPUs than any node has")
        if q.denominator != 1:
            raise QuantityError(f"invalid quantity: {s!r} is not a whole number of GPUs")
        return int(q)
    raise QuantityError(f"invalid quantity: unknown resource {name!r}")


def format_bytes(n: int) -> str:
    """A byte count as Kubernetes writes it ("50Mi", or plain bytes)."""
    for suffix, shift in (("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)):
        if n and n % (1 << shift) == 0:
            return f"{n >> shift}{suffix}"
    return str(n)


def format_millis(n: int) -> str:
    """A milli-CPU count as Kubernetes writes it ("500m" or "2")."""
    return str(n // 1000) if n % 1000 == 0 else f"{n}m"
