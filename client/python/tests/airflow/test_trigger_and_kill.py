"""The trigger across a triggerer restart, on_kill's guarantees and a re-run of
the same try, against the real test daemon (no DAG run needed)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.module_loading import import_string

from pcnode.airflow import IOMapping, PcnodeTaskOperator, PcnodeTaskTrigger, _logic
from pcnode.airflow.operator import _Remote
from pcnode.v1 import task_pb2


def _steps_spec(image: str, steps: str) -> task_pb2.TaskSpec:
    return task_pb2.TaskSpec(
        image=image, template_identifier="steps", env=[task_pb2.EnvVar(name="PCTEST_STEPS", value=steps)]
    )


def _context(dag_id: str, run_id: str, task_id: str, try_number: int) -> dict[str, Any]:
    """_context is the part of an Airflow context the operator reads (a hand-written stand-in)."""
    ti = SimpleNamespace(
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        map_index=-1,
        try_number=try_number,
        xcom_pull=lambda task_ids: None,
    )
    return {"ti": ti, "dag_run": SimpleNamespace(conf={}), "run_id": run_id}


def test_trigger_survives_restart(pcnoded: Any, default_connection: None, images: dict[str, str], client: Any) -> None:
    task, _ = client.submit(_steps_spec(images["pctest"], "echo before -- sleep 1 -- echo after"))
    first = PcnodeTaskTrigger(
        pcnode_conn_id="pcnode_default", node=pcnoded.unix_address, pcnode_task_id=task.id, after_sequence=1
    )
    classpath, kwargs = first.serialize()
    assert kwargs == {
        "pcnode_conn_id": "pcnode_default",
        "node": pcnoded.unix_address,
        "pcnode_task_id": task.id,
        "after_sequence": 1,
    }
    # A triggerer binding the trigger to its task instance sets task_id: the pcnode id stays.
    first.task_id = "airflow_task"

    async def triggerer_dies() -> None:
        gen = first.run()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(gen.__anext__(), 0.3)  # the task still runs: no event yet
        await gen.aclose()

    asyncio.run(triggerer_dies())
    # The task finishes while no triggerer runs.
    assert client.wait(task.id, timeout=60).state == task_pb2.TASK_STATE_SUCCEEDED

    async def new_triggerer() -> Any:
        again = import_string(classpath)(**kwargs)
        return await asyncio.wait_for(again.run().__anext__(), 30)

    event = asyncio.run(new_triggerer())
    assert event.payload == {
        "node": pcnoded.unix_address,
        "task_id": task.id,
        "after_sequence": 1,
        "status": "done",
        "state": "SUCCEEDED",
    }
    # execute_complete prints only what the worker had not printed and returns the XCom.
    op = PcnodeTaskOperator(task_id="t", image=images["pctest"], taskTemplate="steps")
    lines: list[str] = []
    op.log.info = lambda fmt, *a: lines.append(fmt % a if a else fmt)  # type: ignore[method-assign]
    result = op.execute_complete({}, event.payload)
    assert result["task_id"] == task.id
    assert result["state"] == "SUCCEEDED"
    assert result["exit_code"] == 0
    assert "after" in lines
    assert "before" not in lines


def test_trigger_reports_unknown_task(pcnoded: Any, default_connection: None) -> None:
    trig = PcnodeTaskTrigger(
        pcnode_conn_id="pcnode_default", node=pcnoded.unix_address, pcnode_task_id="01NOSUCHTASK000000000000"
    )

    async def run() -> Any:
        return await asyncio.wait_for(trig.run().__anext__(), 30)

    event = asyncio.run(run())
    assert event.payload["status"] == "error"
    assert "01NOSUCHTASK000000000000" in event.payload["message"]
    op = PcnodeTaskOperator(task_id="t", image="x", taskTemplate="steps")
    with pytest.raises(AirflowException, match="pcnode trigger failed"):
        op.execute_complete({}, event.payload)


def test_on_kill_idempotent_never_raises(
    pcnoded: Any, images: dict[str, str], set_connection: Callable[..., None], client: Any
) -> None:
    set_connection("pcnode_default", pcnoded.unix_address, data_root=pcnoded.data_root)
    op = PcnodeTaskOperator(task_id="t", image=images["pctest"], taskTemplate="steps")
    op.on_kill()  # nothing submitted yet: nothing to do
    task, _ = client.submit(_steps_spec(images["pctest"], "sleep 60"))
    op._remote = _Remote(node=pcnoded.unix_address, task_id=task.id)
    op.on_kill()
    op.on_kill()
    assert client.wait(task.id, timeout=60).state == task_pb2.TASK_STATE_CANCELLED
    op.on_kill()  # a finished task stays as it is
    assert client.get_task(task.id).state == task_pb2.TASK_STATE_CANCELLED
    # an unreachable node: a warning, no exception
    set_connection("pcnode_gone", "unix:///nonexistent/pcnoded.sock", data_root="/data")
    gone = PcnodeTaskOperator(task_id="t", image="x", taskTemplate="steps", pcnode_conn_id="pcnode_gone")
    gone._remote = _Remote(node="unix:///nonexistent/pcnoded.sock", task_id=task.id)
    gone.on_kill()


def test_same_try_rerun_reattaches(pcnoded: Any, default_connection: None, images: dict[str, str], client: Any) -> None:
    # A worker died after submitting try 1; the same try runs again and must
    # find that task, finished or not, and not submit a second one.
    ctx = _context("pcnode_direct", "manual__same-try", "same_try", 1)
    op = PcnodeTaskOperator(
        task_id="same_try",
        image=images["pctest"],
        taskTemplate="steps",
        env={"PCTEST_STEPS": "echo only once -- sleep 1"},
    )
    first = op.execute(ctx)
    again = PcnodeTaskOperator(
        task_id="same_try",
        image=images["pctest"],
        taskTemplate="steps",
        env={"PCTEST_STEPS": "echo only once -- sleep 1"},
    )
    second = again.execute(ctx)
    assert second["task_id"] == first["task_id"]
    want = {_logic.LABEL_INSTANCE: _logic.instance_label("pcnode_direct", "manual__same-try", "same_try", -1)}
    assert len(list(client.list_tasks(labels=want))) == 1
    # The idempotency key alone also finds it: a submit of try 1's spec is "existing".
    task = client.get_task(first["task_id"])
    assert task.idempotency_key == _logic.idempotency_key("pcnode_direct", "manual__same-try", "same_try", -1, 1)
    spec = task_pb2.TaskSpec()
    spec.CopyFrom(task.spec)
    _, existing = client.submit(spec, idempotency_key=task.idempotency_key)
    assert existing is True


def test_missing_upstream_xcom_is_clear(pcnoded: Any, default_connection: None, images: dict[str, str]) -> None:
    up = PcnodeTaskOperator(task_id="up", image=images["get-input-task"], taskTemplate="dicom-download")
    down = PcnodeTaskOperator(
        task_id="down",
        image=images["mitk-tools"],
        taskTemplate="register",
        iochannel_maps=[IOMapping(upstream_operator=up, upstream_output_channel="downloads", input_channel="fixed")],
    )
    with pytest.raises(AirflowException, match=r"iochannel_maps\[0\]: upstream task 'up' left no pcnode result"):
        down.execute(_context("pcnode_direct", "manual__missing", "down", 1))


def test_bad_env_and_template_are_clear(pcnoded: Any, default_connection: None, images: dict[str, str]) -> None:
    op = PcnodeTaskOperator(task_id="t", image=images["pctest"], taskTemplate="no-such-template")
    with pytest.raises(AirflowException, match=r"taskTemplate: image .* has no template 'no-such-template'"):
        op.execute(_context("pcnode_direct", "manual__bad", "t", 1))
    op = PcnodeTaskOperator(
        task_id="t2", image=images["pctest"], taskTemplate="steps", env=[{"name": "1X", "value": "v"}]
    )
    with pytest.raises(AirflowException, match=r"env\[0\]\.name: env name '1X'"):
        op.execute(_context("pcnode_direct", "manual__bad", "t2", 1))
    op = PcnodeTaskOperator(task_id="t3", image=images["pctest"], taskTemplate="steps", labels={"bad key!": "x"})
    with pytest.raises(AirflowException, match=r"refused the task: INVALID_ARGUMENT.*labels.*bad key!"):
        op.execute(_context("pcnode_direct", "manual__bad", "t3", 1))


def test_bad_connection_names_the_field(set_connection: Callable[..., None]) -> None:
    set_connection("pcnode_default", "unix:///nonexistent.sock", dataroot="/data")
    op = PcnodeTaskOperator(task_id="t", image="x", taskTemplate="steps")
    with pytest.raises(AirflowException, match=r"pcnode_default\.extra\.dataroot: unknown key"):
        op.execute(_context("pcnode_direct", "manual__badconn", "t", 1))


@pytest.mark.parametrize(
    ("template", "env", "timeout", "reason"),
    [
        ("sleep", {"DURATION": "30s"}, timedelta(seconds=1), "reason TIMEOUT"),
        ("alloc", {"BYTES": "256Mi"}, None, "reason OOM_KILLED"),
    ],
)
def test_timeout_and_oom_fail_with_reason(
    pcnoded: Any,
    default_connection: None,
    images: dict[str, str],
    template: str,
    env: dict[str, str],
    timeout: timedelta | None,
    reason: str,
) -> None:
    op = PcnodeTaskOperator(
        task_id=f"fails_{template}",
        image=images["pctest"],
        taskTemplate=template,
        env=env,
        execution_timeout=timeout,
        stop_grace_period=1,
    )
    with pytest.raises(AirflowException, match=reason):
        op.execute(_context("pcnode_direct", "manual__fails", f"fails_{template}", 1))


def test_unreachable_node_fails_closed(
    pcnoded: Any, images: dict[str, str], set_connection: Callable[..., None]
) -> None:
    set_connection(
        "pcnode_default",
        None,
        data_root=pcnoded.data_root,
        nodes=[{"name": "up", "host": pcnoded.unix_address}, {"name": "gone", "host": "unix:///nonexistent/x.sock"}],
    )
    op = PcnodeTaskOperator(task_id="t", image=images["pctest"], taskTemplate="steps")
    with pytest.raises(AirflowException, match="cannot ask node gone for an earlier try"):
        op.execute(_context("pcnode_direct", "manual__gone", "t", 1))
