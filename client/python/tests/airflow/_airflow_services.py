"""A real, minimal Airflow 3 deployment as subprocesses, for tests/airflow/test_triggerer.py.

It runs in the session's AIRFLOW_HOME (tests/airflow/conftest.py: sqlite,
migrated by the ``airflow_db`` fixture, the DAGs under ``dags/``) and starts
the components that a triggered DAG run needs in Airflow 3 with the
LocalExecutor (the executor Airflow 3 allows on sqlite): an api-server with
only the execution API (the task runners talk to it), a scheduler (its
LocalExecutor runs the tasks), a dag-processor and a triggerer. Everything
listens on loopback only. Each process is the leader of its own process
group, so that killing it takes its children with it; ``stop`` kills them
all, and the fixture prints their logs at teardown (pytest shows them when
the test failed). ``PCNODE_TEST_AIRFLOW_LOG_DIR=dir`` keeps a copy of the
components' output and the task logs there.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    """Proc is one started Airflow component: its process and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")


@dataclass
class AirflowServices:
    """AirflowServices starts and stops Airflow components in one AIRFLOW_HOME."""

    home: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    def start(self, component: str, *args: str) -> Proc:
        """start runs ``airflow COMPONENT ARGS...`` in a new process group, output to a log file."""
        n = sum(p.name.startswith(component) for p in self.procs) + 1
        name = f"{component}-{n}"
        log_path = self.home / "services" / f"{name}.out"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "airflow", component, *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc = Proc(name=name, popen=popen, log_path=log_path, log_file=log_file)
        self.procs.append(proc)
        return proc

    def kill(self, proc: Proc, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """kill sends sig to proc's whole process group and waits for the process to end."""
        if proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, sig)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait(timeout)
        # Children of a component (task runners) may outlive their leader: end the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.log_file.close()

    def stop(self) -> None:
        """stop ends every component, gently first (SIGTERM), then SIGKILL after a few seconds."""
        for proc in self.procs:
            if proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            self.kill(proc, signal.SIGKILL, timeout=5)

    def cli(self, *args: str, timeout: float = 60) -> str:
        """cli runs ``airflow ARGS...`` to completion and returns its output; a failure fails the test."""
        res = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if res.returncode != 0:
            pytest.fail(f"airflow {' '.join(args)} exited {res.returncode}:\n{res.stdout[-3000:]}{res.stderr[-3000:]}")
        return res.stdout

    def logs(self, tail: int = 6000) -> str:
        """logs is the tail of every component's output, for a failure message."""
        parts = []
        for proc in self.procs:
            text = proc.log_path.read_text(errors="replace") if proc.log_path.exists() else ""
            parts.append(f"===== {proc.name} (pid {proc.pid}, rc {proc.popen.poll()}) =====\n{text[-tail:]}")
        return "\n".join(parts)


def wait_http(url: str, proc: Proc, timeout: float) -> None:
    """wait_http waits until url answers (any HTTP status) or fails the test when proc ends or time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            pytest.fail(f"{proc.name} exited {proc.popen.returncode}:\n{proc.log()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"{proc.name} did not answer {url} within {timeout}s:\n{proc.log()[-4000:]}")


def services_env(home: str, connection: str) -> tuple[dict[str, str], int]:
    """services_env is the environment every component shares, and the api-server's port."""
    port = _free_port()
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            # A killed triggerer's triggers go to a live one once its heartbeat is this old.
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "3",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            # A task runner's supervisor notices that its task process ended at
            # the latest after this many seconds. Kept short: a deferred task's
            # "success" from the worker must reach the scheduler before its
            # trigger fires, or Airflow 3.3 can fail the resumed task
            # (apache/airflow#71580, #72716: a race in the scheduler).
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # The connection exactly as the issue writes it (AIRFLOW_CONN_<ID>, JSON).
            "AIRFLOW_CONN_PCNODE_DEFAULT": connection,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env, port


@pytest.fixture
def airflow_services(airflow_db: str) -> Iterator[Any]:
    """airflow_services yields a factory: call it with the connection JSON to start the deployment.

    The factory returns the AirflowServices with api-server, scheduler,
    dag-processor and one triggerer started and the api-server answering.
    """
    started: list[AirflowServices] = []

    def start(connection: str) -> AirflowServices:
        env, port = services_env(airflow_db, connection)
        svc = AirflowServices(home=Path(airflow_db), env=env)
        started.append(svc)
        api = svc.start("api-server", "--apps", "execution", "--host", "127.0.0.1", "--port", str(port), "-w", "1")
        svc.start("scheduler")
        svc.start("dag-processor")
        svc.start("triggerer")
        wait_http(f"http://127.0.0.1:{port}/execution/health", api, timeout=60)
        return svc

    yield start
    keep = os.environ.get("PCNODE_TEST_AIRFLOW_LOG_DIR")
    for svc in started:
        svc.stop()
        if keep:  # the components' output and the task logs, kept for a look afterwards
            shutil.copytree(svc.home / "services", Path(keep) / "services", dirs_exist_ok=True)
            shutil.copytree(svc.home / "logs", Path(keep) / "logs", dirs_exist_ok=True)
        # Shown by pytest only when the test failed.
        print(svc.logs())
