"""follow_logs across a deliberately dropped stream: every line once, in order."""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
import pytest
from clienttest import echo_lines, severing_proxy, steps_spec

import pcnode
import pcnode.aio
from pcnode.v1 import task_pb2


@pytest.fixture(scope="module")
def image(pcnoded) -> str:
    return pcnoded.image("pcnode.test/pytest-follow:1")


def _tls_client(pcnoded, address: str) -> pcnode.Client:
    return pcnode.connect(
        address,
        ca_file=pcnoded.ca_file,
        cert_file=pcnoded.cert_file,
        key_file=pcnoded.key_file,
        server_name="localhost",
    )


@pytest.mark.parametrize("cuts", [1, 3])
def test_follow_logs_survives_severed_connections(pcnoded, image, cuts):
    """A proxy between client and daemon cuts the TCP connection (RST) in the
    middle of the stream, cuts times; the client reconnects and resumes after
    the last sequence it yielded: the lines are exactly those pctest printed."""
    steps, want = echo_lines(60, prefix=f"cut{cuts}", pause="0.03")
    with pcnoded.connect() as admin:
        task, _ = admin.submit(steps_spec(image, steps))
    with severing_proxy(pcnoded.tcp_address) as proxy, _tls_client(pcnoded, proxy.address) as c:
        got: list[task_pb2.LogEntry] = []
        cut_at = {10 * (i + 1) for i in range(cuts)}
        for entry in c.follow_logs(task.id):
            got.append(entry)
            if len(got) in cut_at:
                proxy.sever()
        assert proxy.severed >= cuts, "the proxy cut live connections"
        assert proxy.accepted >= cuts + 1, "the client connected again after each cut"
        final = c.get_task(task.id)
    lines = b"".join(e.data for e in got).decode().splitlines()
    assert lines == want, "no gap, no duplicate, same order"
    seqs = [e.sequence for e in got]
    assert seqs == sorted(set(seqs))
    assert final.state == task_pb2.TASK_STATE_SUCCEEDED


def test_follow_logs_resumes_after_a_cancelled_call(pcnoded, image):
    """Leaving the iterator cancels the call; a new follow_logs after the
    last sequence seen continues with the next line."""
    steps, want = echo_lines(30, prefix="resume", pause="0.02")
    with pcnoded.connect() as c:
        task, _ = c.submit(steps_spec(image, steps))
        first = []
        it = c.follow_logs(task.id)
        for entry in it:
            first.append(entry)
            if len(first) == 7:
                break
        it.close()
        rest = list(c.follow_logs(task.id, after_seq=first[-1].sequence))
    lines = b"".join(e.data for e in first + rest).decode().splitlines()
    assert lines == want


def test_follow_logs_gives_up_when_the_daemon_stays_away(pcnoded, image):
    """With the daemon unreachable (the proxy's listener closed) for longer
    than reconnect_timeout, the last error is raised instead of retrying
    forever."""
    with pcnoded.connect() as admin:
        task, _ = admin.submit(steps_spec(image, "echo first -- sleep 30"))
    with severing_proxy(pcnoded.tcp_address) as proxy, _tls_client(pcnoded, proxy.address) as c:
        it = c.follow_logs(task.id, reconnect_timeout=1.0)
        assert next(it).data == b"first\n"
        proxy.close()
        t0 = time.monotonic()
        with pytest.raises(pcnode.errors.Unavailable) as ei:
            next(it)
        assert ei.value.code == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - t0 < 15, "it gave up after about reconnect_timeout"
    with pcnoded.connect() as admin:
        admin.cancel(task.id, grace_period=0.1)
        admin.wait(task.id, timeout=30)


def test_wait_survives_a_severed_connection(pcnoded, image):
    with pcnoded.connect() as admin:
        task, _ = admin.submit(steps_spec(image, "echo w -- sleep 1.5 -- exit 4"))
    with severing_proxy(pcnoded.tcp_address) as proxy, _tls_client(pcnoded, proxy.address) as c:
        cutter = threading.Timer(0.7, proxy.sever)
        cutter.start()
        try:
            done = c.wait(task.id, timeout=60)
        finally:
            cutter.cancel()
        assert proxy.severed >= 1
        assert proxy.accepted >= 2
    assert done.state == task_pb2.TASK_STATE_FAILED
    assert done.exit_code == 4


def test_aio_follow_logs_survives_a_severed_connection(pcnoded, image):
    steps, want = echo_lines(40, prefix="aiocut", pause="0.03")
    with pcnoded.connect() as admin:
        task, _ = admin.submit(steps_spec(image, steps))

    async def follow(address: str, proxy) -> list[task_pb2.LogEntry]:
        got: list[task_pb2.LogEntry] = []
        async with pcnode.aio.connect(
            address,
            ca_file=pcnoded.ca_file,
            cert_file=pcnoded.cert_file,
            key_file=pcnoded.key_file,
            server_name="localhost",
        ) as ac:
            async for entry in ac.follow_logs(task.id):
                got.append(entry)
                if len(got) in (8, 20):
                    proxy.sever()
        return got

    with severing_proxy(pcnoded.tcp_address) as proxy:
        got = asyncio.run(follow(proxy.address, proxy))
        assert proxy.severed >= 2
        assert proxy.accepted >= 3
    assert b"".join(e.data for e in got).decode().splitlines() == want
