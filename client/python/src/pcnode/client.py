"""The synchronous pcnode client: :func:`connect` and :class:`Client`.

Every method takes and returns the generated proto messages of
``pcnode.v1``; every gRPC error is raised as a :mod:`pcnode.errors`
exception. Unary calls get the client's ``timeout`` as deadline; streams
have none (a follow may last as long as its task).
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import IO, Any

import grpc
from google.protobuf import duration_pb2

from pcnode import _resume, _target
from pcnode.errors import DeadlineExceeded, PcnodeError, error_for, from_rpc_error
from pcnode.v1 import (
    image_service_pb2,
    image_service_pb2_grpc,
    node_service_pb2,
    node_service_pb2_grpc,
    task_pb2,
    task_service_pb2,
    task_service_pb2_grpc,
)

__all__ = ["Client", "connect"]

log = logging.getLogger("pcnode.client")

# Size of the chunks import_image sends (the daemon takes at most 4 MiB each).
IMPORT_CHUNK_BYTES = 1 << 20
# How long a resuming stream keeps trying to reach the daemon, from its last
# delivery, before the last error is raised. None: forever.
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
) -> Client:
    """Connects to a pcnoded.

    Args:
        address: ``unix:///path`` or ``/path`` (a unix socket), or
            ``host:port`` (TCP).
        ca_file: PEM bundle of the CA that signed the server certificate;
            with it, TCP uses TLS.
        cert_file, key_file: a client certificate and its key (mutual TLS);
            both or neither, and only with ca_file.
        server_name: the DNS name the server certificate must carry, when it
            is not the address's host.
        timeout: deadline in seconds of every unary call (None: none).

    The channel is opened lazily: a daemon that is not there shows on the
    first call, as :class:`pcnode.errors.Unavailable`.
    """
    cfg = _target.channel_config(
        address, ca_file=ca_file, cert_file=cert_file, key_file=key_file, server_name=server_name
    )
    if cfg.credentials is None:
        channel = grpc.insecure_channel(cfg.target, options=list(cfg.options))
    else:
        channel = grpc.secure_channel(cfg.target, cfg.credentials, options=list(cfg.options))
    return Client(channel, timeout=timeout)


def _duration(seconds: float | duration_pb2.Duration | None) -> duration_pb2.Duration | None:
    if seconds is None:
        return None
    if isinstance(seconds, duration_pb2.Duration):
        return seconds
    if seconds < 0:
        raise ValueError(f"grace_period {seconds!r} is negative")
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


class Client:
    """A connection to one pcnoded. Use as a context manager, or call close()."""

    def __init__(self, channel: grpc.Channel, *, timeout: float | None = 30.0) -> None:
        self._channel = channel
        self.timeout = timeout
        self.tasks = task_service_pb2_grpc.TaskServiceStub(channel)
        self.nodes = node_service_pb2_grpc.NodeServiceStub(channel)
        self.images = image_service_pb2_grpc.ImageServiceStub(channel)

    # -- lifetime ------------------------------------------------------------

    def close(self) -> None:
        """Closes the channel; calls in flight end with Cancelled."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def channel(self) -> grpc.Channel:
        """The underlying gRPC channel."""
        return self._channel

    # -- helpers ---------------------------------------------------------------

    def _unary(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    @staticmethod
    def _stream(call: Any) -> Iterator[Any]:
        """Iterates a response stream, converting errors; cancels it when left early."""
        try:
            yield from call
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        finally:
            call.cancel()

    # -- tasks ---------------------------------------------------------------------

    def submit(self, spec: task_pb2.TaskSpec, idempotency_key: str = "") -> tuple[task_pb2.Task, bool]:
        """Queues a task; returns (task, existing), existing True when the
        idempotency key matched a task submitted before."""
        resp = self._unary(
            self.tasks.SubmitTask,
            task_service_pb2.SubmitTaskRequest(spec=spec, idempotency_key=idempotency_key),
        )
        return resp.task, resp.existing

    def get_task(self, task_id: str) -> task_pb2.Task:
        """Returns one task (NotFound when there is none)."""
        resp: task_service_pb2.GetTaskResponse = self._unary(
            self.tasks.GetTask, task_service_pb2.GetTaskRequest(task_id=task_id)
        )
        return resp.task

    def list_tasks(
        self,
        states: Iterable[int] = (),
        labels: Mapping[str, str] | None = None,
        *,
        page_size: int = 0,
    ) -> Iterator[task_pb2.Task]:
        """Yields every task in these states with all of these labels, newest
        first, fetching one page at a time."""
        token = ""
        while True:
            resp = self._unary(
                self.tasks.ListTasks,
                task_service_pb2.ListTasksRequest(
                    states=list(states),  # type: ignore[arg-type]
                    labels=dict(labels or {}),
                    page_size=page_size,
                    page_token=token,
                ),
            )
            yield from resp.tasks
            token = resp.next_page_token
            if not token:
                return

    def cancel(self, task_id: str, grace_period: float | duration_pb2.Duration | None = None) -> task_pb2.Task:
        """Stops a task (SIGTERM, then SIGKILL after grace_period seconds);
        returns it as it is once the request was accepted."""
        req = task_service_pb2.CancelTaskRequest(task_id=task_id)
        gp = _duration(grace_period)
        if gp is not None:
            req.grace_period.CopyFrom(gp)
        resp: task_service_pb2.CancelTaskResponse = self._unary(self.tasks.CancelTask, req)
        return resp.task

    def delete(self, task_id: str) -> None:
        """Removes a finished task's record and logs."""
        self._unary(self.tasks.DeleteTask, task_service_pb2.DeleteTaskRequest(task_id=task_id))

    def resolve(self, spec: task_pb2.TaskSpec) -> task_service_pb2.ResolveTaskResponse:
        """Dry run: the merged instance, whether it fits, and every problem."""
        resp: task_service_pb2.ResolveTaskResponse = self._unary(
            self.tasks.ResolveTask, task_service_pb2.ResolveTaskRequest(spec=spec)
        )
        return resp

    def outputs(self, task_id: str, *, page_size: int = 0) -> list[task_pb2.OutputManifest]:
        """Every output manifest of a finished task, all pages joined: a
        channel cut across pages comes back as one manifest."""
        out: list[task_pb2.OutputManifest] = []
        token = ""
        while True:
            resp = self._unary(
                self.tasks.GetTaskOutputs,
                task_service_pb2.GetTaskOutputsRequest(task_id=task_id, page_size=page_size, page_token=token),
            )
            for m in resp.manifests:
                if out and out[-1].name == m.name:
                    out[-1].files.extend(m.files)
                else:
                    out.append(m)
            token = resp.next_page_token
            if not token:
                return out

    def run(
        self,
        spec: task_pb2.TaskSpec | None = None,
        task_id: str | None = None,
        idempotency_key: str = "",
        include_logs: bool = True,
    ) -> Iterator[task_pb2.TaskEvent]:
        """Submits spec (or attaches to task_id) and yields every event until
        the task has finished; the last one is its final state change.

        A stream that ends before the task finished raises Unavailable.
        Leaving the loop early cancels the stream (not the task).
        """
        if (spec is None) == (task_id is None):
            raise ValueError("run needs exactly one of spec and task_id")
        req = task_service_pb2.RunTaskRequest(include_logs=include_logs)
        if spec is not None:
            req.submit.CopyFrom(task_service_pb2.SubmitTaskRequest(spec=spec, idempotency_key=idempotency_key))
        else:
            req.task_id = task_id or ""
        return self._run(req)

    def _run(self, req: task_service_pb2.RunTaskRequest) -> Iterator[task_pb2.TaskEvent]:
        last: task_pb2.Task | None = None
        for resp in self._stream(self.tasks.RunTask(req)):
            ev = resp.event
            if ev.HasField("state_change"):
                last = ev.state_change
            yield ev
        if last is None or not _resume.is_final(last.state):
            state = task_pb2.TaskState.Name(last.state) if last is not None else "none"
            raise error_for(
                grpc.StatusCode.UNAVAILABLE, f"RunTask stream ended before the task finished (last state {state})"
            )

    def follow_logs(
        self,
        task_id: str,
        after_seq: int = 0,
        follow: bool = True,
        *,
        on_gap: Callable[[task_pb2.LogGap], None] | None = None,
        reconnect_timeout: float | None = DEFAULT_RECONNECT_TIMEOUT,
    ) -> Iterator[task_pb2.LogEntry]:
        """Yields the task's log entries after sequence after_seq, in order.

        With follow, it keeps going until the task has finished. When the
        stream drops (daemon restart, a proxy or network cutting it) it opens
        it again with backoff after the last sequence yielded, so every entry
        comes exactly once. Entries the daemon rotated away before they could
        be read are reported to on_gap (default: a warning on the
        ``pcnode.client`` logger). It gives up with the last error once the
        daemon was unreachable for reconnect_timeout seconds.
        """
        cursor = _resume.LogCursor(last=after_seq)
        bo = _resume.Backoff()
        since = time.monotonic()
        while True:
            call = self.tasks.StreamLogs(
                task_service_pb2.StreamLogsRequest(task_id=task_id, follow=follow, after_sequence=cursor.last)
            )
            err: grpc.RpcError | None = None
            try:
                for resp in call:
                    if resp.HasField("gap"):
                        gap = cursor.accept_gap(resp.gap)
                        if gap is not None:
                            _report_gap(task_id, gap, on_gap)
                            since = time.monotonic()
                            bo.reset()
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
                # The daemon ends a follow when the task has finished; an end
                # for another reason (a shutdown) is a drop like any other.
                if not follow:
                    return
                try:
                    if _resume.is_final(self.get_task(task_id).state):
                        return
                except PcnodeError as pe:
                    if not _resume.resumable(pe.code, pe.message):
                        raise
            else:
                code = err.code() if callable(getattr(err, "code", None)) else None
                details = err.details() if callable(getattr(err, "details", None)) else ""
                if not _resume.resumable(code, details or ""):
                    raise from_rpc_error(err) from None
                if reconnect_timeout is not None and time.monotonic() - since > reconnect_timeout:
                    raise from_rpc_error(err) from None
            delay = bo.next_delay()
            log.debug("follow_logs %s: stream ended, resuming after sequence %d in %.2fs", task_id, cursor.last, delay)
            time.sleep(delay)

    def watch_tasks(
        self,
        after_revision: int = 0,
        send_initial: bool = False,
        *,
        labels: Mapping[str, str] | None = None,
        reconnect_timeout: float | None = DEFAULT_RECONNECT_TIMEOUT,
    ) -> Iterator[task_pb2.TaskEvent]:
        """Yields every state change on the node, in order, until the caller
        stops iterating. A dropped stream is opened again after the highest
        revision yielded, so no change is missed or repeated; a revision
        older than the daemon keeps raises OutOfRange (reason
        ``REVISION_COMPACTED``): re-list and watch again."""
        cursor = _resume.WatchCursor(after_revision=after_revision, send_initial=send_initial)
        bo = _resume.Backoff()
        since = time.monotonic()
        while True:
            cursor.opened()
            call = self.tasks.WatchTasks(
                task_service_pb2.WatchTasksRequest(
                    labels=dict(labels or {}),
                    send_initial=cursor.send_initial,
                    after_revision=cursor.after_revision,
                )
            )
            delivered = False
            err: grpc.RpcError | None = None
            try:
                for resp in call:
                    if cursor.accept(resp.event):
                        delivered = True
                        since = time.monotonic()
                        bo.reset()
                        yield resp.event
            except grpc.RpcError as e:
                err = e
            finally:
                call.cancel()
            if err is not None:
                code = err.code() if callable(getattr(err, "code", None)) else None
                details = err.details() if callable(getattr(err, "details", None)) else ""
                # A watcher that fell behind is ended with RESOURCE_EXHAUSTED
                # after events; before any event it is a stream cap.
                fell_behind = delivered and code == grpc.StatusCode.RESOURCE_EXHAUSTED
                if not _resume.resumable(code, details or "") and not fell_behind:
                    raise from_rpc_error(err) from None
                if reconnect_timeout is not None and time.monotonic() - since > reconnect_timeout:
                    raise from_rpc_error(err) from None
            time.sleep(bo.next_delay())

    def wait(self, task_id: str, timeout: float | None = None) -> task_pb2.Task:
        """Blocks until the task has finished and returns it; raises
        DeadlineExceeded (also a TimeoutError) after timeout seconds.
        A dropped connection is retried until then.

        It attaches with RunTask; a caller whose role may not (a viewer)
        waits on WatchTasks instead, checking the task at least every
        WAIT_POLL seconds."""
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
                    final = self._wait_watch_once(task_id, remaining)
                    if final is not None:
                        return final
                    continue
                final = self._wait_run_once(task_id, remaining)
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
            time.sleep(delay)

    def _wait_run_once(self, task_id: str, remaining: float | None) -> task_pb2.Task | None:
        call = self.tasks.RunTask(
            task_service_pb2.RunTaskRequest(task_id=task_id, include_logs=False), timeout=remaining
        )
        try:
            for resp in call:
                if resp.event.HasField("state_change") and _resume.is_final(resp.event.state_change.state):
                    final: task_pb2.Task = resp.event.state_change
                    return final
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        finally:
            call.cancel()
        return None

    def _wait_watch_once(self, task_id: str, remaining: float | None) -> task_pb2.Task | None:
        """One watch cycle of at most WAIT_POLL seconds; None when the task
        has not finished yet."""
        cycle = WAIT_POLL if remaining is None else min(WAIT_POLL, remaining)
        call = self.tasks.WatchTasks(task_service_pb2.WatchTasksRequest(), timeout=cycle)
        try:
            # The watch was started before the task is read, so a change
            # after the read is on the stream; one in the moment before the
            # daemon registered the watch is seen by the next cycle's read.
            task = self.get_task(task_id)
            if _resume.is_final(task.state):
                return task
            for resp in call:
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

    # -- node --------------------------------------------------------------------

    def get_node(self) -> node_service_pb2.Node:
        """The node: name, versions, GPUs, capacity, queue."""
        resp: node_service_pb2.GetNodeResponse = self._unary(self.nodes.GetNode, node_service_pb2.GetNodeRequest())
        return resp.node

    def drain(self) -> node_service_pb2.Node:
        """Stops the node from starting new tasks (admin)."""
        resp: node_service_pb2.DrainNodeResponse = self._unary(
            self.nodes.DrainNode, node_service_pb2.DrainNodeRequest()
        )
        return resp.node

    def resume(self) -> node_service_pb2.Node:
        """Undoes drain (admin)."""
        resp: node_service_pb2.ResumeNodeResponse = self._unary(
            self.nodes.ResumeNode, node_service_pb2.ResumeNodeRequest()
        )
        return resp.node

    # -- images --------------------------------------------------------------------

    def pull_image(self, ref: str, username: str = "", password: str = "") -> image_service_pb2.Image:
        """Pulls ref from its registry (credentials: these, else the node's);
        returns the image. The password is sent to the daemon only."""
        req = image_service_pb2.PullImageRequest(reference=ref)
        if username or password:
            req.auth.CopyFrom(task_pb2.RegistryAuth(username=username, password=password))
        image: image_service_pb2.Image | None = None
        for resp in self._stream(self.images.PullImage(req)):
            if resp.HasField("image"):
                image = resp.image
        if image is None:
            raise error_for(grpc.StatusCode.UNAVAILABLE, f"PullImage {ref}: stream ended without the image")
        return image

    def import_image(
        self,
        path_or_file: str | os.PathLike[str] | IO[bytes],
        reference: str = "",
        *,
        archive_format: int = image_service_pb2.ARCHIVE_FORMAT_UNSPECIFIED,
    ) -> list[image_service_pb2.Image]:
        """Imports an OCI or docker-archive tarball (a path or a binary file
        object), streamed in 1 MiB chunks; returns the images it held.
        reference names an image the archive leaves unnamed."""
        if isinstance(path_or_file, (str, os.PathLike)):
            with open(path_or_file, "rb") as f:
                return self._import(f, reference, archive_format)
        if isinstance(path_or_file, io.TextIOBase):  # type: ignore[unreachable]
            raise TypeError("import_image needs a binary file (open it with 'rb')")
        return self._import(path_or_file, reference, archive_format)

    def _import(self, f: IO[bytes], reference: str, archive_format: int) -> list[image_service_pb2.Image]:
        size = 0
        try:
            size = os.fstat(f.fileno()).st_size
        except (OSError, AttributeError, io.UnsupportedOperation):
            size = 0

        def parts() -> Iterator[image_service_pb2.ImportImageRequest]:
            yield image_service_pb2.ImportImageRequest(
                metadata=image_service_pb2.ImportImageMetadata(
                    format=archive_format,  # type: ignore[arg-type]
                    reference=reference,
                    size_bytes=size,
                )
            )
            while True:
                chunk = f.read(IMPORT_CHUNK_BYTES)
                if not chunk:
                    return
                yield image_service_pb2.ImportImageRequest(chunk=chunk)

        try:
            resp = self.images.ImportImage(parts())
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        return list(resp.images)

    def list_images(self) -> list[image_service_pb2.Image]:
        """Every image in the node's namespace."""
        return list(self._unary(self.images.ListImages, image_service_pb2.ListImagesRequest()).images)

    def remove_image(self, ref: str) -> None:
        """Removes an image (admin); FailedPrecondition while a task uses it."""
        self._unary(self.images.RemoveImage, image_service_pb2.RemoveImageRequest(reference=ref))

    def get_processing_container(self, ref: str) -> image_service_pb2.GetProcessingContainerResponse:
        """The image's /processing-container.json, parsed, with its digest and warnings."""
        resp: image_service_pb2.GetProcessingContainerResponse = self._unary(
            self.images.GetProcessingContainer, image_service_pb2.GetProcessingContainerRequest(reference=ref)
        )
        return resp


def _report_gap(task_id: str, gap: task_pb2.LogGap, on_gap: Callable[[task_pb2.LogGap], None] | None) -> None:
    if on_gap is not None:
        on_gap(gap)
        return
    log.warning(
        "task %s: log entries %d to %d were rotated away before they could be read",
        task_id,
        gap.first_missed_sequence,
        gap.last_missed_sequence,
    )
