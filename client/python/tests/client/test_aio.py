"""The asyncio client against the real daemon."""

from __future__ import annotations

import asyncio

import pytest
from clienttest import echo_lines, steps_spec

import pcnode.aio
from pcnode import errors
from pcnode.v1 import task_pb2


@pytest.fixture(scope="module")
def image(pcnoded) -> str:
    return pcnoded.image("pcnode.test/pytest-aio:1")


def test_aio_waits_and_follows(pcnoded, image):
    steps, want = echo_lines(10, prefix="aio", pause="0.02")
    with pcnoded.connect() as c:
        task, _ = c.submit(steps_spec(image, steps))

    async def main() -> tuple[task_pb2.Task, list[str]]:
        async with pcnode.aio.connect(pcnoded.unix_address) as ac:
            data = b""
            async for entry in ac.follow_logs(task.id):
                data += entry.data
            done = await ac.wait(task.id, timeout=60)
            again = await ac.get_task(task.id)
            assert again.state == done.state
            return done, data.decode().splitlines()

    done, lines = asyncio.run(main())
    assert done.state == task_pb2.TASK_STATE_SUCCEEDED
    assert lines == want


def test_aio_cancel_and_errors(pcnoded, image):
    with pcnoded.connect() as c:
        task, _ = c.submit(steps_spec(image, "sleep forever"))

    async def main() -> task_pb2.Task:
        async with pcnode.aio.connect(pcnoded.unix_address) as ac:
            with pytest.raises(errors.DeadlineExceeded):
                await ac.wait(task.id, timeout=0.3)
            await ac.cancel(task.id, grace_period=0.1)
            with pytest.raises(errors.NotFound):
                await ac.get_task("01ARZ3NDEKTSV4RRFFQ69G5FAV")
            return await ac.wait(task.id, timeout=30)

    assert asyncio.run(main()).state == task_pb2.TASK_STATE_CANCELLED


def test_aio_viewer_waits_on_the_watch(pcnoded, image):
    with pcnoded.connect() as c:
        task, _ = c.submit(steps_spec(image, "sleep 1"))

    async def main() -> task_pb2.Task:
        async with pcnode.aio.connect(
            pcnoded.tcp_address,
            ca_file=pcnoded.ca_file,
            cert_file=pcnoded.viewer_cert_file,
            key_file=pcnoded.viewer_key_file,
        ) as ac:
            with pytest.raises(errors.PermissionDenied):
                await ac.cancel(task.id)
            return await ac.wait(task.id, timeout=60)

    assert asyncio.run(main()).state == task_pb2.TASK_STATE_SUCCEEDED
