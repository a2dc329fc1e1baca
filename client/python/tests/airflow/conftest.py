"""Airflow 3 for the operator tests: a temporary AIRFLOW_HOME with sqlite, the
DAGs under ``dags/``, the test images those DAGs name, and helpers that run a
DAG with ``dag.test()`` and read what each task logged.

The environment is set when this module is imported, before anything imports
Airflow, so that Airflow reads this home, this DAG folder and this database.
``airflow db migrate`` runs once per session (the ``airflow_db`` fixture).
"""

from __future__ import annotations

import atexit
import importlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parent / "dags"
# Always a fresh home of our own (never a user's real AIRFLOW_HOME), removed at exit.
_HOME = tempfile.mkdtemp(prefix="pcnode-airflow-")
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ.update(
    {
        "AIRFLOW_HOME": _HOME,
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow.db",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
)
if str(DAGS) not in sys.path:
    sys.path.insert(0, str(DAGS))

# Airflow reads its configuration on import: only now may it be imported.
from airflow.models.taskinstance import TaskInstance  # noqa: E402
from airflow.models.xcom import XComModel  # noqa: E402
from airflow.utils.session import create_session  # noqa: E402
from kaapana.blueprints.kaapana_global_variables import (  # noqa: E402  (needs sys.path above)
    DEFAULT_REGISTRY,
    KAAPANA_BUILD_VERSION,
)
from sqlalchemy import select  # noqa: E402

# The processing-containers the DAGs run, named as Kaapana's images; every
# command is pctest (internal/testimage/testprog).
_CHANNEL = {"description": "files"}
PROCESSING_CONTAINERS: dict[str, dict[str, Any]] = {
    "get-input-task": {
        "name": "get-input-task",
        "description": "Stands in for Kaapana's get-input-task: writes one file per series.",
        "templates": [
            {
                "identifier": "dicom-download",
                "description": "Write SERIES/image.dcm into downloads.",
                "env": [
                    {"name": "SERIES", "value": "default", "type": "string", "adjustable": True},
                    # test_triggerer.py keeps a download running for a while (task_form env).
                    {"name": "DELAY", "value": "0", "type": "string", "adjustable": True},
                ],
                "inputs": [],
                "outputs": [{"name": "downloads", "mounted_path": "/kaapana/mounted/downloads", **_CHANNEL}],
                "command": [
                    "/pctest",
                    "echo",
                    "download: fetching series ${SERIES}",
                    "--",
                    "write-file",
                    "/kaapana/mounted/downloads/${SERIES}/image.dcm",
                    "4k",
                    "--",
                    "sleep",
                    "${DELAY}",
                    "--",
                    "ls",
                    "/kaapana/mounted/downloads",
                ],
            }
        ],
    },
    "mitk-tools": {
        "name": "mitk-tools",
        "description": "Stands in for Kaapana's mitk-tools: register copies fixed and upper-cases moving.",
        "templates": [
            {
                "identifier": "register",
                "description": "Copy fixed to registered/fixed; upper-case moving into registered/moving.",
                "env": [
                    # test_triggerer.py: the trigger must not fire before the scheduler saw the task defer.
                    {"name": "DELAY", "value": "0", "type": "string", "adjustable": True},
                ],
                "inputs": [
                    {"name": "fixed", "mounted_path": "/kaapana/mounted/fixed", **_CHANNEL},
                    {"name": "moving", "mounted_path": "/kaapana/mounted/moving", **_CHANNEL},
                ],
                "outputs": [{"name": "registered", "mounted_path": "/kaapana/mounted/registered", **_CHANNEL}],
                "command": [
                    "/pctest",
                    "echo",
                    "register: reading fixed and moving",
                    "--",
                    "sleep",
                    "${DELAY}",
                    "--",
                    "ls",
                    "/kaapana/mounted/fixed",
                    "--",
                    "ls",
                    "/kaapana/mounted/moving",
                    "--",
                    "copy",
                    "/kaapana/mounted/fixed",
                    "/kaapana/mounted/registered/fixed",
                    "--",
                    "transform",
                    "/kaapana/mounted/moving",
                    "/kaapana/mounted/registered/moving",
                ],
            }
        ],
    },
    "nrrd-to-dicom": {
        "name": "nrrd-to-dicom",
        "description": "Stands in for Kaapana's nrrd-to-dicom: lists nrrd and reference, copies nrrd to dicom.",
        "templates": [
            {
                "identifier": "nrrd-to-dicom",
                "description": "List nrrd and reference; copy nrrd into dicom.",
                "env": [
                    # test_triggerer.py: the trigger must not fire before the scheduler saw the task defer.
                    {"name": "DELAY", "value": "0", "type": "string", "adjustable": True},
                ],
                "inputs": [
                    {"name": "nrrd", "mounted_path": "/kaapana/mounted/nrrd", **_CHANNEL},
                    {"name": "reference", "mounted_path": "/kaapana/mounted/reference", **_CHANNEL},
                ],
                "outputs": [{"name": "dicom", "mounted_path": "/kaapana/mounted/dicom", **_CHANNEL}],
                "command": [
                    "/pctest",
                    "echo",
                    "nrrd-to-dicom: converting",
                    "--",
                    "sleep",
                    "${DELAY}",
                    "--",
                    "ls",
                    "/kaapana/mounted/nrrd",
                    "--",
                    "ls",
                    "/kaapana/mounted/reference",
                    "--",
                    "copy",
                    "/kaapana/mounted/nrrd",
                    "/kaapana/mounted/dicom",
                ],
            }
        ],
    },
}


def image_ref(name: str) -> str:
    """image_ref is the reference the DAGs use for a test image."""
    return f"{DEFAULT_REGISTRY}/{name}:{KAAPANA_BUILD_VERSION}"


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """airflow_db migrates the session's sqlite metadata database once; returns AIRFLOW_HOME."""
    res = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, timeout=300, check=False
    )
    if res.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{res.stdout[-4000:]}{res.stderr[-4000:]}")
    return _HOME


@pytest.fixture(scope="session")
def images(pcnoded: Any) -> dict[str, str]:
    """images imports the DAGs' images into the test daemon: Kaapana-named ones and the default pctest one."""
    refs = {name: pcnoded.image(image_ref(name), pc) for name, pc in PROCESSING_CONTAINERS.items()}
    refs["pctest"] = pcnoded.image(image_ref("pctest"))
    for name, ref in refs.items():
        assert ref == image_ref(name), f"image {name} imported as {ref}, the DAGs name {image_ref(name)}"
    return refs


@pytest.fixture(scope="session")
def small_node_images(pcnoded_small: Any) -> dict[str, str]:
    """small_node_images imports the same images into the second, small test daemon."""
    return {name: pcnoded_small.image(image_ref(name), pc) for name, pc in PROCESSING_CONTAINERS.items()}


def connection_json(host: str | None, **extra: Any) -> str:
    """connection_json is an AIRFLOW_CONN_* value of type pcnode, as the issue spells it."""
    conn: dict[str, Any] = {"conn_type": "pcnode", "extra": extra}
    if host is not None:
        conn["host"] = host
    return json.dumps(conn)


@pytest.fixture
def tcp_node(pcnoded: Any) -> Callable[[str], dict[str, Any]]:
    """tcp_node(name) is a node entry for the daemon's mutual-TLS TCP address (admin certificate)."""

    def node(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "host": pcnoded.tcp_address,
            "ca_file": pcnoded.ca_file,
            "cert_file": pcnoded.cert_file,
            "key_file": pcnoded.key_file,
            "server_name": "localhost",
        }

    return node


@pytest.fixture
def set_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """set_connection(conn_id, host, **extra) sets AIRFLOW_CONN_<ID> for this test."""

    def set_(conn_id: str, host: str | None, **extra: Any) -> None:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection_json(host, **extra))

    return set_


@pytest.fixture
def default_connection(pcnoded: Any, images: dict[str, str], set_connection: Callable[..., None]) -> None:
    """default_connection is pcnode_default on the unix socket, exactly as the issue writes it."""
    set_connection("pcnode_default", pcnoded.unix_address, data_root=pcnoded.data_root)


@dataclass
class DagResult:
    """DagResult is one dag.test() run: the run, each task's state, XCom and log lines."""

    run_id: str
    state: str
    states: dict[str, str]
    xcoms: dict[str, Any]
    logs: dict[str, list[str]]
    output: str

    def log(self, task_id: str) -> str:
        return "\n".join(self.logs.get(task_id, []))


_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+)")
_END = re.compile(r"\[DAG TEST\] end task task_id=(\S+)")


def split_task_logs(output: str) -> dict[str, list[str]]:
    """split_task_logs groups dag.test()'s output by task: the lines between a task's start and end markers."""
    logs: dict[str, list[str]] = {}
    current: str | None = None
    for line in output.splitlines():
        if m := _START.search(line):
            current = m.group(1)
            continue
        if _END.search(line):
            current = None
            continue
        if current is not None:
            logs.setdefault(current, []).append(line)
    return logs


_run_counter = [0]


class _MarkerHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "[DAG TEST]" in msg:
            sys.stdout.write(msg + "\n")
            sys.stdout.flush()


@pytest.fixture
def run_dag(airflow_db: str, capfd: pytest.CaptureFixture[str]) -> Callable[..., DagResult]:
    """run_dag(dag_id, conf=None) imports dags/<dag_id>.py, runs it with dag.test() and returns a DagResult."""

    def run(dag_id: str, conf: dict[str, Any] | None = None) -> DagResult:
        module = importlib.import_module(dag_id)
        dag = module.dag
        # A distinct logical date per run: distinct run ids, data directories and keys.
        _run_counter[0] += 1
        logical = datetime.now(timezone.utc) - timedelta(seconds=_run_counter[0])
        capfd.readouterr()
        # dag.test() announces each task through stdlib logging, the task's
        # own log goes to stdout: put the announcements into the same stream.
        marker = _MarkerHandler()
        dag_log = logging.getLogger("airflow.sdk.definitions.dag")
        dag_log.addHandler(marker)
        try:
            dr = dag.test(logical_date=logical, run_conf=conf)
        finally:
            dag_log.removeHandler(marker)
        out, err = capfd.readouterr()
        sys.stdout.write(out)
        sys.stderr.write(err)
        output = out + err
        with create_session() as session:
            tis = session.scalars(
                select(TaskInstance).where(TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == dr.run_id)
            ).all()
            states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in tis}
            rows = session.scalars(
                select(XComModel).where(
                    XComModel.dag_id == dag.dag_id, XComModel.run_id == dr.run_id, XComModel.key == "return_value"
                )
            ).all()
            xcoms = {r.task_id: XComModel.deserialize_value(r) for r in rows}
        return DagResult(
            run_id=dr.run_id,
            state=str(dr.state.value if hasattr(dr.state, "value") else dr.state),
            states=states,
            xcoms=xcoms,
            logs=split_task_logs(output),
            output=output,
        )

    return run


@pytest.fixture
def client(pcnoded: Any) -> Iterator[Any]:
    """client is a pcnode client on the test daemon's unix socket."""
    with pcnoded.connect() as c:
        yield c
