"""The asyncio pcnode client (grpc.aio): :func:`connect` and :class:`AsyncClient`.

Same addresses, TLS arguments and errors as :func:`pcnode.connect`; the
calls a trigger or an async scheduler needs: ``get_task``, ``wait``,
``cancel`` and the async iterator ``follow_logs``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any

import grpc
import grpc.aio
from google.protobuf import duration_pb2

from pcnode import _resume, _target
from pcnode.errors import DeadlineExceeded, PcnodeError, from_rpc_error
from pcnode.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc

__all__ = ["AsyncClient", "connect"]

log = logging.getLogger("pcnode.aio")

DEFAULT_RECONNECT_TIMEOUT = 300.0
# Longest a wait() on WatchTasks goes without reading the task itself.
WAIT_POLL = 5.0


def connect(
    address: str,
    *,
    ca_file: str | os.PathLike[str] | None = None,
    cert_file: str | os.PathLike[str] | None = None,
    key_file: str | os.PathLike[str] | None = None,
    server_name: str | None = None,
    timeout: float | None = 30.0,
) -> AsyncClient:
    """Like :func:`pcnode.connect`, for asyncio. Call it inside a running
    event loop (grpc.aio channels belong to the loop that made them)."""
    cfg = _target.channel_config(
        address, ca_file=ca_file, cert_file=cert_file, key_file=key_file, server_name=server_name
    )
    if cfg.credentials is None:
        channel = grpc.aio.insecure_channel(cfg.target, options=list(cfg.options))
    else:
        channel = grpc.aio.secure_channel(cfg.target, cfg.credentials, options=list(cfg.options))
    return AsyncClient(channel, timeout=timeout)


class AsyncClient:
    """An asyncio connection to one pcnoded; ``async with`` it, or await close()."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout: float | None = 30.0) -> None:
        self._channel = channel
        self.timeout = timeout
        self.tasks = task_service_pb2_grpc.TaskServiceStub(channel)

    async def close(self) -> None:
        await self._channel.close(None)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _unary(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    async def get_task(self, task_id: str) -> task_pb2.Task:
        """Returns one task (NotFound when there is none)."""
        resp = await self._unary(self.tasks.GetTask, task_service_pb2.GetTaskRequest(task_id=task_id))
        task: task_pb2.Task = resp.task
        return task

    async def cancel(self, task_id: str, grace_period: float | None = None) -> task_pb2.Task:
        """Stops a task; see :meth:`pcnode.Client.cancel`."""
        req = task_service_pb2.CancelTaskRequest(task_id=task_id)
        if grace_period is not None:
            if grace_period < 0:
                raise ValueError(f"grace_period {grace_period!r} is negative")
            d = duration_pb2.Duration()
            d.FromNanoseconds(round(grace_period * 1e9))
            req.grace_period.CopyFrom(d)
        resp = await self._unary(self.tasks.CancelTask, req)
        task: task_pb2.Task = resp.task
        return task

    async def wait(self, task_id: str, timeout: float | None = None) -> task_pb2.Task:
        """Waits until the task has finished and returns it; DeadlineExceeded
        (a TimeoutError) after timeout seconds. Dropped streams are retried;
        a caller that may not attach (a viewer) waits on WatchTasks, as
        :meth:`pcnode.Client.wait` does."""
        deadline = None if timeout is None else time.monotonic() + timeout
        bo = _resume.Backoff()
        watch = False
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise DeadlineExceeded(
                    grpc.StatusCode.DEADLINE_EXCEEDED, f"task {task_id} did not finish in {timeout}s"
                )
            try:
                if watch:
                    final = await self._wait_watch_once(task_id, remaining)
                    if final is not None:
                        return final
                    continue
                final = await self._wait_run_once(task_id, remaining)
                if final is not None:
                    return final
            except PcnodeError as pe:
                if pe.code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise DeadlineExceeded(pe.code, f"task {task_id} did not finish in {timeout}s") from None
                if pe.code == grpc.StatusCode.PERMISSION_DENIED and not watch:
                    watch = True
                    continue
                if not _resume.resumable(pe.code, pe.message):
                    raise
            delay = bo.next_delay()
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            await asyncio.sleep(delay)

    async def _wait_run_once(self, task_id: str, remaining: float | None) -> task_pb2.Task | None:
        call = self.tasks.RunTask(
            task_service_pb2.RunTaskRequest(task_id=task_id, include_logs=False), timeout=remaining
        )
        try:
            async for resp in call:
                if resp.event.HasField("state_change") and _resume.is_final(resp.event.state_change.state):
                    final: task_pb2.Task = resp.event.state_change
                    return final
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        finally:
            call.cancel()
        return None

    async def _wait_watch_once(self, task_id: str, remaining: float | None) -> task_pb2.Task | None:
        cycle = WAIT_POLL if remaining is None else min(WAIT_POLL, remaining)
        call = self.tasks.WatchTasks(task_service_pb2.WatchTasksRequest(), timeout=cycle)
        try:
            task = await self.get_task(task_id)
            if _resume.is_final(task.state):
                return task
            async for resp in call:
                ev = resp.event
                if ev.task_id == task_id and _resume.is_final(ev.state_change.state):
                    final: task_pb2.Task = ev.state_change
                    return final
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise from_rpc_error(e) from None
        finally:
            call.cancel()
        return None

    async def follow_logs(
        self,
        task_id: str,
        after_seq: int = 0,
        follow: bool = True,
        *,
        on_gap: Callable[[task_pb2.LogGap], None] | None = None,
        reconnect_timeout: float | None = DEFAULT_RECONNECT_TIMEOUT,
    ) -> AsyncIterator[task_pb2.LogEntry]:
        """Async version of :meth:`pcnode.Client.follow_logs`: every entry
        once, in order, across dropped streams."""
        cursor = _resume.LogCursor(last=after_seq)
        bo = _resume.Backoff()
        since = time.monotonic()
        while True:
            call = self.tasks.StreamLogs(
                task_service_pb2.StreamLogsRequest(task_id=task_id, follow=follow, after_sequence=cursor.last)
            )
            err: grpc.RpcError | None = None
            try:
                async for resp in call:
                    if resp.HasField("gap"):
                        gap = cursor.accept_gap(resp.gap)
                        if gap is not None:
                            since = time.monotonic()
                            bo.reset()
                            if on_gap is not None:
                                on_gap(gap)
                            else:
                                log.warning(
                                    "task %s: log entries %d to %d were rotated away before they could be read",
                                    task_id,
                                    gap.first_missed_sequence,
                                    gap.last_missed_sequence,
                                )
                        continue
                    for entry in resp.entries:
                        if cursor.accept_entry(entry):
                            since = time.monotonic()
                            bo.reset()
                            yield entry
            except grpc.RpcError as e:
                err = e
            finally:
                call.cancel()
            if err is None:
                if not follow:
                    return
                try:
                    if _resume.is_final((await self.get_task(task_id)).state):
                        return
                except PcnodeError as pe:
                    if not _resume.resumable(pe.code, pe.message):
                        raise
            else:
                failure = from_rpc_error(err)
                if not _resume.resumable(failure.code, failure.message):
                    raise failure from None
                if reconnect_timeout is not None and time.monotonic() - since > reconnect_timeout:
                    raise failure from None
            await asyncio.sleep(bo.next_delay())
