"""Unit tests of the client's pure logic: addresses, error details, resume cursors."""

from __future__ import annotations

import random

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

import pcnode
from pcnode import _resume, _target, errors
from pcnode.v1 import task_pb2


@pytest.mark.parametrize(
    ("address", "target", "unix"),
    [
        ("unix:///run/pcnode/pcnoded.sock", "unix:///run/pcnode/pcnoded.sock", True),
        ("unix:/run/x.sock", "unix:///run/x.sock", True),
        ("/run/pcnode/../pcnode/pcnoded.sock", "unix:///run/pcnode/pcnoded.sock", True),
        ("node1:7443", "node1:7443", False),
        ("127.0.0.1:1", "127.0.0.1:1", False),
        ("[::1]:7443", "[::1]:7443", False),
    ],
)
def test_parse_address(address, target, unix):
    t = _target.parse_address(address)
    assert (t.target, t.unix) == (target, unix)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("", "empty"),
        ("unix://relative/x.sock", "absolute"),
        ("relative.sock", "not unix"),
        ("node1", "not unix"),
        ("node1:0", "port 0"),
        ("node1:70000", "port 70000"),
        ("dns:///node1:7443", "unknown scheme"),
        ("node 1:7443", "white space"),
        ("/tmp/\x00x", "NUL"),
        ("/" + "a" * 200, "longer than"),
    ],
)
def test_parse_address_rejects(address, why):
    with pytest.raises(ValueError, match=why):
        _target.parse_address(address)


def test_connect_rejects_inconsistent_tls_arguments(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(ValueError, match="together"):
        pcnode.connect("node1:7443", ca_file=ca, cert_file=ca)
    with pytest.raises(ValueError, match="unix socket"):
        pcnode.connect("/run/x.sock", ca_file=ca)
    with pytest.raises(ValueError, match="need ca_file"):
        pcnode.connect("node1:7443", cert_file=ca, key_file=ca)
    with pytest.raises(ValueError, match=r"ca_file .*missing"):
        pcnode.connect("node1:7443", ca_file=tmp_path / "missing")
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        pcnode.connect("node1:7443", ca_file=empty)


def _status(*details) -> bytes:
    st = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="bad")
    for d in details:
        a = any_pb2.Any()
        a.Pack(d)
        st.details.append(a)
    return st.SerializeToString()


class _FakeRpcError(grpc.RpcError):
    """A hand-written stand-in for the call object grpc raises."""

    def __init__(self, code, details, trailers):
        self._code, self._details, self._trailers = code, details, trailers

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailers


def test_from_rpc_error_parses_bad_request_and_error_info():
    br = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="spec.env[0].name", description="is empty"),
            error_details_pb2.BadRequest.FieldViolation(field="spec.image", description="is not a reference"),
        ]
    )
    info = error_details_pb2.ErrorInfo(reason="REVISION_COMPACTED", domain="pcnode", metadata={"oldest_revision": "7"})
    e = errors.from_rpc_error(
        _FakeRpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid spec",
            (("other", "x"), ("grpc-status-details-bin", _status(br, info))),
        )
    )
    assert type(e) is errors.InvalidArgument
    assert isinstance(e, pcnode.PcnodeError)
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT
    assert e.message == "invalid spec"
    assert e.field_violations == [("spec.env[0].name", "is empty"), ("spec.image", "is not a reference")]
    assert (e.reason, e.metadata) == ("REVISION_COMPACTED", {"oldest_revision": "7"})
    assert "spec.env[0].name: is empty" in str(e)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.NOT_FOUND, errors.NotFound),
        (grpc.StatusCode.ALREADY_EXISTS, errors.AlreadyExists),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPrecondition),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ResourceExhausted),
        (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDenied),
        (grpc.StatusCode.UNAUTHENTICATED, errors.Unauthenticated),
        (grpc.StatusCode.UNAVAILABLE, errors.Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceeded),
        (grpc.StatusCode.ABORTED, errors.Aborted),
        (grpc.StatusCode.INTERNAL, errors.Internal),
        (grpc.StatusCode.OUT_OF_RANGE, errors.OutOfRange),
        (grpc.StatusCode.CANCELLED, errors.Cancelled),
        (grpc.StatusCode.UNKNOWN, errors.PcnodeError),
    ],
)
def test_each_code_has_its_class(code, cls):
    e = errors.from_rpc_error(_FakeRpcError(code, "m", None))
    assert type(e) is cls
    assert (e.code, e.message, e.field_violations, e.reason, e.metadata) == (code, "m", [], "", {})


@pytest.mark.parametrize("raw", [b"\xff\xff garbage", b"x" * ((1 << 20) + 1), b""])
def test_broken_details_are_ignored(raw):
    e = errors.from_rpc_error(_FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "m", (("grpc-status-details-bin", raw),)))
    assert type(e) is errors.InvalidArgument
    assert e.field_violations == []


def test_log_cursor_drops_duplicates_and_clips_gaps():
    cur = _resume.LogCursor(last=2)
    seqs = [1, 2, 3, 4, 4, 3, 5]
    got = [s for s in seqs if cur.accept_entry(task_pb2.LogEntry(sequence=s))]
    assert got == [3, 4, 5]
    assert cur.accept_gap(task_pb2.LogGap(first_missed_sequence=2, last_missed_sequence=5)) is None
    g = cur.accept_gap(task_pb2.LogGap(first_missed_sequence=4, last_missed_sequence=9))
    assert (g.first_missed_sequence, g.last_missed_sequence) == (6, 9)
    assert cur.last == 9
    assert not cur.accept_entry(task_pb2.LogEntry(sequence=8))
    assert cur.accept_entry(task_pb2.LogEntry(sequence=10))


def test_watch_cursor_skips_what_was_delivered_before_a_resume():
    cur = _resume.WatchCursor(after_revision=0, send_initial=True)
    cur.opened()
    # The initial snapshot carries revisions as they are; all are delivered.
    assert [r for r in (5, 3, 6) if cur.accept(task_pb2.TaskEvent(revision=r))] == [5, 3, 6]
    assert (cur.after_revision, cur.send_initial) == (6, False)
    cur.opened()  # resumed after 6
    assert [r for r in (4, 6, 7, 8) if cur.accept(task_pb2.TaskEvent(revision=r))] == [7, 8]


def test_backoff_doubles_with_jitter_and_resets():
    bo = _resume.Backoff(initial=0.1, maximum=0.4, rng=random.Random(1))
    delays = [bo.next_delay() for _ in range(5)]
    for d, base in zip(delays, [0.1, 0.2, 0.4, 0.4, 0.4], strict=True):
        assert 0.8 * base <= d <= 1.2 * base
    bo.reset()
    assert bo.next_delay() <= 0.12


@pytest.mark.parametrize(
    ("code", "message", "want"),
    [
        (grpc.StatusCode.UNAVAILABLE, "", True),
        (grpc.StatusCode.INTERNAL, "Received RST_STREAM with error code 2", True),
        (grpc.StatusCode.INTERNAL, "boom", False),
        (grpc.StatusCode.NOT_FOUND, "", False),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "", False),
        (None, "", False),
    ],
)
def test_resumable(code, message, want):
    assert _resume.resumable(code, message) is want


def test_run_needs_exactly_one_target():
    c = pcnode.connect("unix:///nonexistent/x.sock")
    with c, pytest.raises(ValueError, match="exactly one"):
        c.run()
