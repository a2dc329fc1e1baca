"""The deferrable fan-in DAG under a real Airflow 3 deployment (scheduler,
LocalExecutor, api-server, dag-processor, triggerer as subprocesses, sqlite),
with the triggerer SIGKILLed and replaced while a task is deferred."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from _airflow_services import AirflowServices, airflow_services  # noqa: F401  (the fixture)
from airflow.jobs.job import Job
from airflow.models.dag import DagModel
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.models.trigger import Trigger
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from sqlalchemy import select
from test_dags import check_fanin

from pcnode.airflow import _logic
from pcnode.v1 import task_pb2

DAG_ID = "pcnode_register"
TASKS = ["download_fixed_image", "download_moving_images", "register_images", "convert_registered_nrrd_to_dicom"]
# Both downloads' containers sleep this long after writing their file
# (task_form env): long enough to kill the triggerer and start a new one
# while both are deferred.
DELAY_SECONDS = 10
LATER_DELAY_SECONDS = 4


@dataclass
class RunResult:
    """RunResult is what check_fanin reads, taken from the database and the task log files."""

    run_id: str
    state: str
    states: dict[str, str]
    xcoms: dict[str, Any]
    logs: dict[str, list[str]]
    output: str

    def log(self, task_id: str) -> str:
        return "\n".join(self.logs.get(task_id, []))


def _events(path: Path) -> list[str]:
    """_events is a task log file's messages: Airflow 3 writes one JSON object per line."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        out.append(str(rec.get("event", "")) if isinstance(rec, dict) else line)
    return out


def _task_dir(home: str, run_id: str, task_id: str) -> Path:
    return Path(home) / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"


def _run_logs(home: str, run_id: str, tail: int = 4000) -> str:
    """_run_logs is the tail of every log file of the run's tasks, for a failure message."""
    root = Path(home) / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
    parts = [
        f"----- {f.relative_to(root)} -----\n{f.read_text(errors='replace')[-tail:]}"
        for f in sorted(root.rglob("*.log"))
    ]
    return "\n".join(parts)


def _until(what: str, check: Callable[[], Any], timeout: float, svc: AirflowServices) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{svc.logs()}")


def _triggerer_jobs(since: datetime) -> list[Job]:
    with create_session() as session:
        jobs = session.scalars(
            select(Job).where(Job.job_type == "TriggererJob", Job.start_date >= since).order_by(Job.id)
        ).all()
        session.expunge_all()
        return list(jobs)


# Airflow's four processes start slowly on a busy 2-core machine (a cold
# dag-processor has been seen to take a minute): generous waits, each named.
@pytest.mark.timeout(540)
def test_deferrable_fanin_survives_triggerer_restart(
    pcnoded: Any,
    images: dict[str, str],
    airflow_services: Callable[[str], AirflowServices],  # noqa: F811  (the imported fixture)
    client: Any,
) -> None:
    begin = datetime.now(timezone.utc)
    connection = json.dumps(
        {
            "conn_type": "pcnode",
            "host": pcnoded.unix_address,
            "extra": {"data_root": pcnoded.data_root, "deferrable": True},
        }
    )
    svc = airflow_services(connection)
    home = svc.env["AIRFLOW_HOME"]
    (triggerer1,) = [p for p in svc.procs if p.name == "triggerer-1"]

    def parsed() -> bool:
        with create_session() as session:
            dm = session.get(DagModel, DAG_ID)
            return dm is not None and dm.last_parsed_time is not None and dm.last_parsed_time >= begin

    _until("the dag-processor to parse the DAG", parsed, 120, svc)
    # The session's dag.test() runs (test_dags.py) created the DAG's row
    # paused; a paused DAG's triggered run is never scheduled.
    svc.cli("dags", "unpause", DAG_ID)

    run_id = f"manual__triggerer-{secrets.token_hex(4)}"
    delay = {"env": [{"name": "DELAY", "value": str(DELAY_SECONDS)}]}
    # The later tasks wait a few seconds too: a trigger that fires before the
    # scheduler has seen the deferring task exit meets Airflow's scheduler race
    # (apache/airflow#71580), which fails the resumed task.
    later = {"env": [{"name": "DELAY", "value": str(LATER_DELAY_SECONDS)}]}
    conf = {
        "task_form": {
            "download_fixed_image": delay,
            "download_moving_images": delay,
            "register_images": later,
            "convert_registered_nrrd_to_dicom": later,
        }
    }
    svc.cli("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps(conf))

    downloads = ["download_fixed_image", "download_moving_images"]

    def deferred_on_one_triggerer() -> tuple[int, dict[str, str]] | None:
        """(triggerer job id, {task: pcnode task id}) once both downloads wait in the same triggerer."""
        triggerers: set[int] = set()
        with create_session() as session:
            tis = session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == DAG_ID,
                    TaskInstance.run_id == run_id,
                    TaskInstance.task_id.in_(downloads),
                )
            ).all()
            for ti in tis:
                if str(getattr(ti.state, "value", ti.state)) != "deferred" or ti.trigger_id is None:
                    return None
                trigger = session.get(Trigger, ti.trigger_id)
                if trigger is None or trigger.triggerer_id is None:
                    return None
                triggerers.add(trigger.triggerer_id)
        if len(tis) != 2 or len(triggerers) != 1:
            return None
        ids = {}
        for task in downloads:
            label = {_logic.LABEL_INSTANCE: _logic.instance_label(DAG_ID, run_id, task, -1)}
            found = list(client.list_tasks(labels=label))
            if len(found) != 1:
                return None
            ids[task] = found[0].id
        return triggerers.pop(), ids

    first_job_id, download_ids = _until(
        "both downloads to defer to the first triggerer", deferred_on_one_triggerer, 150, svc
    )
    # Their tasks are not finished: the triggers are waiting on them right now.
    # On a node busy with other tests' tasks one may still be queued.
    unfinished = (task_pb2.TASK_STATE_QUEUED, task_pb2.TASK_STATE_PREPARING, task_pb2.TASK_STATE_RUNNING)
    for task, pcnode_id in download_ids.items():
        assert client.get_task(pcnode_id).state in unfinished, task
    killed_at = datetime.now(timezone.utc)
    svc.kill(triggerer1)  # SIGKILL to its process group: no clean shutdown
    assert triggerer1.popen.returncode == -9
    triggerer2 = svc.start("triggerer")
    assert triggerer2.pid != triggerer1.pid

    def finished() -> str | None:
        with create_session() as session:
            dr = session.scalars(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == run_id)).one()
            state = str(getattr(dr.state, "value", dr.state))
            return state if state in ("success", "failed") else None

    state = _until("the DAG run to finish", finished, 180, svc)

    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == run_id)
        ).all()
        states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in tis}
        tries = {ti.task_id: ti.try_number for ti in tis}
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == DAG_ID, XComModel.run_id == run_id, XComModel.key == "return_value"
            )
        ).all()
        xcoms = {r.task_id: XComModel.deserialize_value(r) for r in rows}
    logs = {}
    for task in TASKS:
        files = sorted(_task_dir(home, run_id, task).glob("attempt=*.log"))
        logs[task] = [e for f in files for e in _events(f)]
    result = RunResult(run_id=run_id, state=state, states=states, xcoms=xcoms, logs=logs, output=svc.logs())
    assert state == "success", f"{states}\n{_run_logs(home, run_id)}\n{svc.logs()}"
    assert tries == dict.fromkeys(TASKS, 1)  # no task needed a retry
    # states, XCom, the files each downstream read, each container's lines in
    # its own task log only and once, one pcnode task per Airflow task: as for dag.test().
    check_fanin(result, pcnoded, client)
    for task, pcnode_id in download_ids.items():
        assert xcoms[task]["task_id"] == pcnode_id

    # Every task deferred and resumed (the connection's "deferrable": true).
    for task in TASKS:
        pcnode_id = xcoms[task]["task_id"]
        assert f"pcnode task {pcnode_id} on node" in result.log(task), result.log(task)

    # The triggerer really was replaced: two triggerer jobs, the second one
    # started after the kill, and it is the one that fired both downloads' events.
    jobs = _triggerer_jobs(begin)
    assert [j.id for j in jobs][:1] == [first_job_id], [(j.id, j.start_date) for j in jobs]
    assert len(jobs) == 2, [(j.id, j.start_date) for j in jobs]
    second = jobs[1]
    assert second.start_date is not None
    assert second.start_date >= killed_at
    for task, pcnode_id in download_ids.items():
        task_dir = _task_dir(home, run_id, task)
        done = f"pcnode task {pcnode_id} on node {pcnoded.unix_address} finished: SUCCEEDED"
        second_log = task_dir / f"attempt=1.log.trigger.{second.id}.log"
        assert second_log.exists(), sorted(p.name for p in task_dir.iterdir())
        assert done in _events(second_log)
        assert "Trigger fired event" in _events(second_log)
        first_log = task_dir / f"attempt=1.log.trigger.{first_job_id}.log"
        assert not first_log.exists() or done not in _events(first_log)
        # The container's last lines came after the restart, yet they are in the task log once.
        assert result.log(task).count("total files=1 bytes=4000") == 1
