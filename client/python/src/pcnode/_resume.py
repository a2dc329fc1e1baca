"""Pure logic of resuming streams, shared by the sync and aio clients.

Kept free of I/O so that unit tests can drive it with hand-written input.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import grpc

from pcnode.v1 import task_pb2

FINAL_STATES = frozenset(
    {
        task_pb2.TASK_STATE_SUCCEEDED,
        task_pb2.TASK_STATE_FAILED,
        task_pb2.TASK_STATE_CANCELLED,
    }
)

# Backoff between reconnects: doubling from INITIAL to MAX seconds, ±20 %
# jitter, back to the start after a stream that delivered something.
BACKOFF_INITIAL = 0.1
BACKOFF_MAX = 5.0


def is_final(state: int) -> bool:
    """Whether a TaskState is final (succeeded, failed or cancelled)."""
    return state in FINAL_STATES


def resumable(code: grpc.StatusCode | None, message: str = "") -> bool:
    """Whether a stream that failed with code is worth opening again.

    A daemon that could not be reached or a connection (or stream) that was
    reset is; NotFound, PermissionDenied, OutOfRange, a stream cap and the
    rest are final.
    """
    if code == grpc.StatusCode.UNAVAILABLE:
        return True
    if code == grpc.StatusCode.INTERNAL:
        # An HTTP/2 RST_STREAM the transport did not expect.
        return "RST_STREAM" in message
    return False


@dataclass
class Backoff:
    """Exponential backoff with ±20 % jitter."""

    initial: float = BACKOFF_INITIAL
    maximum: float = BACKOFF_MAX
    _next: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    def reset(self) -> None:
        self._next = 0.0

    def next_delay(self) -> float:
        if self._next == 0.0:
            self._next = self.initial
        d = self._next * (0.8 + 0.4 * self.rng.random())
        self._next = min(2 * self._next, self.maximum)
        return d


@dataclass
class LogCursor:
    """Tracks the last log sequence delivered and filters what a (re)opened
    StreamLogs stream sends: nothing at or below the cursor is delivered
    twice, and a gap is clipped to what was not yet delivered."""

    last: int = 0

    def accept_entry(self, entry: task_pb2.LogEntry) -> bool:
        """Whether entry is new; advances the cursor when it is."""
        if entry.sequence <= self.last:
            return False
        self.last = entry.sequence
        return True

    def accept_gap(self, gap: task_pb2.LogGap) -> task_pb2.LogGap | None:
        """The part of gap not yet delivered (None: all of it was), advancing the cursor."""
        if gap.last_missed_sequence <= self.last:
            return None
        out = task_pb2.LogGap(
            first_missed_sequence=max(gap.first_missed_sequence, self.last + 1),
            last_missed_sequence=gap.last_missed_sequence,
        )
        self.last = gap.last_missed_sequence
        return out


@dataclass
class WatchCursor:
    """Tracks the highest revision a watch delivered, for WatchTasks resume."""

    after_revision: int = 0
    send_initial: bool = False
    _from: int = 0
    _resumed: bool = False

    def opened(self) -> None:
        """Call when a stream is (re)opened with the current cursor."""
        self._from = self.after_revision
        self._resumed = not self.send_initial

    def accept(self, event: task_pb2.TaskEvent) -> bool:
        """Whether event is new; advances the cursor when it is."""
        rev = event.revision
        if self._resumed and rev != 0 and rev <= self._from:
            return False
        if rev > self.after_revision:
            self.after_revision = rev
            self.send_initial = False
        return True
