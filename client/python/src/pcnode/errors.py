"""Exceptions of the pcnode client.

Every gRPC error a call ends with is raised as a :class:`PcnodeError`, or
rather as the subclass for its status code (``NotFound``, ``InvalidArgument``,
...), so callers catch what they mean::

    try:
        client.submit(spec)
    except pcnode.errors.InvalidArgument as e:
        for field, why in e.field_violations:
            print(field, why)

The details the daemon attaches to a status (``grpc-status-details-bin``: a
``google.rpc.Status`` with ``BadRequest`` and ``ErrorInfo`` details) are
parsed into :attr:`PcnodeError.field_violations`, :attr:`PcnodeError.reason`
and :attr:`PcnodeError.metadata`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "Aborted",
    "AlreadyExists",
    "Cancelled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PcnodeError",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "from_rpc_error",
]

# The trailer that carries a serialized google.rpc.Status.
_DETAILS_KEY = "grpc-status-details-bin"
# A status with more details than this is not parsed further: a hostile or
# broken server must not make the client hold unbounded data.
_MAX_DETAILS_BYTES = 1 << 20


class PcnodeError(Exception):
    """A failed pcnode call.

    Attributes:
        code: the gRPC status code.
        message: the status message.
        field_violations: ``(field, description)`` pairs of a
            ``google.rpc.BadRequest`` detail; field paths are spelled as the
            daemon spells them (``spec.env[0].name``).
        reason: the ``google.rpc.ErrorInfo`` reason, or ``""``.
        metadata: the ``ErrorInfo`` metadata (empty without one).
    """

    #: The code this class stands for; PcnodeError itself takes any.
    grpc_code: grpc.StatusCode | None = None

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        field_violations: Sequence[tuple[str, str]] = (),
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.field_violations: list[tuple[str, str]] = list(field_violations)
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})
        super().__init__(self._text())

    def _text(self) -> str:
        name = self.code.name if isinstance(self.code, grpc.StatusCode) else str(self.code)
        text = f"{name}: {self.message}"
        if self.field_violations:
            text += " (" + "; ".join(f"{f}: {d}" for f, d in self.field_violations) + ")"
        return text


class Cancelled(PcnodeError):
    """The call was cancelled (CANCELLED)."""

    grpc_code = grpc.StatusCode.CANCELLED


class InvalidArgument(PcnodeError):
    """The request was invalid (INVALID_ARGUMENT); see field_violations."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(PcnodeError, TimeoutError):
    """The call's deadline passed (DEADLINE_EXCEEDED). Also a TimeoutError."""

    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(PcnodeError):
    """No such task, image or file (NOT_FOUND)."""

    grpc_code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(PcnodeError):
    """The idempotency key is taken by a different spec (ALREADY_EXISTS)."""

    grpc_code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(PcnodeError):
    """The caller's role may not make this call (PERMISSION_DENIED)."""

    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(PcnodeError):
    """A limit was hit, or the task can never fit the node (RESOURCE_EXHAUSTED)."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(PcnodeError):
    """The object is not in a state that allows the call (FAILED_PRECONDITION)."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(PcnodeError):
    """The call was aborted (ABORTED)."""

    grpc_code = grpc.StatusCode.ABORTED


class OutOfRange(PcnodeError):
    """Out of range, e.g. a compacted watch revision (OUT_OF_RANGE)."""

    grpc_code = grpc.StatusCode.OUT_OF_RANGE


class Internal(PcnodeError):
    """The daemon failed (INTERNAL)."""

    grpc_code = grpc.StatusCode.INTERNAL


class Unavailable(PcnodeError):
    """The daemon could not be reached or the connection dropped (UNAVAILABLE)."""

    grpc_code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(PcnodeError):
    """The caller could not be authenticated (UNAUTHENTICATED)."""

    grpc_code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE: dict[grpc.StatusCode, type[PcnodeError]] = {
    cls.grpc_code: cls
    for cls in (
        Cancelled,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Internal,
        Unavailable,
        Unauthenticated,
    )
    if cls.grpc_code is not None
}


def error_for(
    code: grpc.StatusCode,
    message: str,
    *,
    field_violations: Sequence[tuple[str, str]] = (),
    reason: str = "",
    metadata: Mapping[str, str] | None = None,
) -> PcnodeError:
    """Returns the PcnodeError subclass instance for code."""
    cls = _BY_CODE.get(code, PcnodeError)
    return cls(code, message, field_violations=field_violations, reason=reason, metadata=metadata)


def _details(trailers: object) -> bytes | None:
    if not trailers:
        return None
    try:
        items = list(trailers)  # type: ignore[call-overload]
    except TypeError:
        return None
    for item in items:
        try:
            key, value = item
        except (TypeError, ValueError):
            continue
        if key == _DETAILS_KEY and isinstance(value, bytes):
            return value
    return None


def parse_status_details(
    raw: bytes | None,
) -> tuple[list[tuple[str, str]], str, dict[str, str]]:
    """Parses a serialized google.rpc.Status into (violations, reason, metadata).

    Anything that does not parse is ignored: the error is still raised with
    its code and message.
    """
    violations: list[tuple[str, str]] = []
    reason = ""
    metadata: dict[str, str] = {}
    if not raw or len(raw) > _MAX_DETAILS_BYTES:
        return violations, reason, metadata
    status = status_pb2.Status()
    try:
        status.ParseFromString(raw)
    except DecodeError:
        return violations, reason, metadata
    for any_msg in status.details:
        if any_msg.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            if any_msg.Unpack(br):
                violations.extend((v.field, v.description) for v in br.field_violations)
        elif any_msg.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            if any_msg.Unpack(info) and not reason:
                reason = info.reason
                metadata = dict(info.metadata)
    return violations, reason, metadata


def from_rpc_error(err: grpc.RpcError) -> PcnodeError:
    """Converts a grpc.RpcError (sync or aio) into a PcnodeError subclass."""
    code_fn = getattr(err, "code", None)
    code = code_fn() if callable(code_fn) else None
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    details_fn = getattr(err, "details", None)
    message = details_fn() if callable(details_fn) else None
    if not isinstance(message, str):
        message = str(err)
    trailers_fn = getattr(err, "trailing_metadata", None)
    trailers = trailers_fn() if callable(trailers_fn) else None
    violations, reason, metadata = parse_status_details(_details(trailers))
    return error_for(code, message, field_violations=violations, reason=reason, metadata=metadata)
