"""Helpers shared by the client tests: specs for the pctest image and a
loopback TCP proxy that can sever its connections."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

from pcnode.v1 import task_pb2


def steps_spec(
    image: str, steps: str, *, name: str = "pytest", labels: dict[str, str] | None = None
) -> task_pb2.TaskSpec:
    """A spec of the default test image's "steps" template running pctest steps."""
    return task_pb2.TaskSpec(
        name=name,
        image=image,
        template_identifier="steps",
        env=[task_pb2.EnvVar(name="PCTEST_STEPS", value=steps)],
        labels=labels or {},
    )


def echo_lines(n: int, prefix: str = "line", pause: str = "") -> tuple[str, list[str]]:
    """pctest steps that print n numbered lines (sleeping pause between
    them), and the lines they print."""
    lines = [f"{prefix}-{i:04d}" for i in range(n)]
    parts: list[str] = []
    for line in lines:
        parts.append(f"echo {line}")
        if pause:
            parts.append(f"sleep {pause}")
    return " -- ".join(parts), lines


class SeveringProxy:
    """Forwards loopback TCP connections to target; sever() cuts every
    connection open now (both sides), as a broken network or a proxy would.
    New connections are still accepted afterwards."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._ls.bind(("127.0.0.1", 0))
        self._ls.listen(16)
        self.address = f"127.0.0.1:{self._ls.getsockname()[1]}"
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.accepted = 0
        self.severed = 0
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self._ls.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.target, timeout=5)
            except OSError:
                c.close()
                continue
            u.settimeout(None)
            with self._lock:
                if self._closed:
                    c.close()
                    u.close()
                    return
                self.accepted += 1
                self._open += [c, u]
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def sever(self) -> None:
        with self._lock:
            conns, self._open = self._open, []
            self.severed += len(conns) // 2
        for s in conns:
            # shutdown acts on the connection even while a pump thread is
            # blocked in recv() on it (close alone would wait for that).
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        # shutdown wakes the accept() of the other thread (close alone does
        # not, and the kernel would go on accepting into the backlog).
        with contextlib.suppress(OSError):
            self._ls.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._ls.close()
        self._thread.join(5)
        self.sever()


@contextlib.contextmanager
def severing_proxy(target: str) -> Iterator[SeveringProxy]:
    host, port = target.rsplit(":", 1)
    p = SeveringProxy((host, int(port)))
    try:
        yield p
    finally:
        p.close()
