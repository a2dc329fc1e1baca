"""Problems and warnings found in a processing-container.json or task.json."""

from __future__ import annotations

from typing import Iterable, List, NamedTuple, Tuple

__all__ = ["Problem", "SpecWarning", "ValidationError"]


class Problem(NamedTuple):
    """One thing wrong with a specification.

    ``field`` is the JSON path of the offending value in the file's own
    spelling, exactly as pcnode's Go daemon names it
    (``templates[1].env[2].value``, ``inputs[0].volume_source.host_path``,
    ``resources.limits["nvidia.com/gpu"]``); empty for the document as a whole.
    """

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}" if self.field else self.description


class SpecWarning(NamedTuple):
    """Something pcnode ignores or accepts with reservations (an unknown field, a duplicate key)."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}" if self.field else self.description


class ValidationError(ValueError):
    """A specification breaks pcnode's rules.

    ``problems`` lists every problem found, as ``(field, description)``
    tuples (:class:`Problem`); ``warnings`` what was ignored.
    """

    def __init__(self, what: str, problems: Iterable[Tuple[str, str]], warnings: Iterable[Tuple[str, str]] = ()):
        self.problems: List[Problem] = [Problem(*p) for p in problems]
        self.warnings: List[SpecWarning] = [SpecWarning(*w) for w in warnings]
        shown = "; ".join(str(p) for p in self.problems[:20])
        more = f"; ... {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"invalid {what}: {shown}{more}")
