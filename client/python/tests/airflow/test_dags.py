"""Real Airflow 3 DAG runs (dag.test(), sqlite) against a real pcnoded and containerd."""

from __future__ import annotations

import hashlib
import os
import secrets as pysecrets
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pcnode.airflow import _logic
from pcnode.v1 import task_pb2


def _files(root: str) -> dict[str, bytes]:
    base = Path(root)
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def _labels_of(result: Any, dag_id: str, task_id: str) -> dict[str, str]:
    return {_logic.LABEL_INSTANCE: _logic.instance_label(dag_id, result.run_id, task_id, -1)}


def check_fanin(result: Any, pcnoded: Any, client: Any) -> None:
    """check_fanin checks a run of dags/pcnode_register.py: states, XCom, files, each task's log."""
    assert result.state == "success", result.output[-5000:]
    tasks = ["download_fixed_image", "download_moving_images", "register_images", "convert_registered_nrrd_to_dicom"]
    assert result.states == dict.fromkeys(tasks, "success")

    run_dir = _logic.task_dir(pcnoded.data_root, "pcnode_register", result.run_id, "x", -1).rsplit("/", 1)[0]
    fixed = result.xcoms["download_fixed_image"]
    assert fixed["node"] == pcnoded.unix_address
    assert fixed["exit_code"] == 0
    assert fixed["state"] == "SUCCEEDED"
    assert fixed["reason"] == "COMPLETED"
    assert fixed["outputs"]["downloads"]["path"] == f"{run_dir}/download_fixed_image/downloads"
    assert fixed["outputs"]["downloads"]["files"] == 1
    assert fixed["outputs"]["downloads"]["bytes"] == 4000

    # register read both downloads: a copy of fixed, moving upper-cased.
    reg = result.xcoms["register_images"]
    reg_files = _files(reg["outputs"]["registered"]["path"])
    moving = _files(result.xcoms["download_moving_images"]["outputs"]["downloads"]["path"])
    assert set(reg_files) == {"fixed/fixed/image.dcm", "moving/moving/image.dcm"}
    assert reg_files["fixed/fixed/image.dcm"] == _files(fixed["outputs"]["downloads"]["path"])["fixed/image.dcm"]
    assert reg_files["moving/moving/image.dcm"] == moving["moving/image.dcm"].upper()
    assert reg["outputs"]["registered"]["files"] == 2
    listing = {f["path"]: f["sha256"] for f in reg["outputs"]["registered"]["listing"]}
    assert listing["moving/moving/image.dcm"] == hashlib.sha256(reg_files["moving/moving/image.dcm"]).hexdigest()

    # the later task got register's output and download_moving_images' output.
    dicom = _files(result.xcoms["convert_registered_nrrd_to_dicom"]["outputs"]["dicom"]["path"])
    assert dicom == reg_files

    # each container's lines are in its own task's log, and only there
    own = {
        "download_fixed_image": "download: fetching series fixed",
        "download_moving_images": "download: fetching series moving",
        "register_images": "register: reading fixed and moving",
        "convert_registered_nrrd_to_dicom": "nrrd-to-dicom: converting",
    }
    for task, line in own.items():
        assert line in result.log(task), f"{task} log lacks {line!r}:\n{result.log(task)}"
        for other, other_line in own.items():
            if other != task:
                assert other_line not in result.log(task)
    # every container line printed exactly once (no duplicates), in order
    reg_log = result.log("register_images")
    assert reg_log.count("register: reading fixed and moving") == 1
    assert reg_log.count("total files=1 bytes=4000") == 2  # the ls of fixed, then of moving
    assert reg_log.index("register: reading fixed and moving") < reg_log.index("total files=1 bytes=4000")
    # one pcnode task per Airflow task
    for task in tasks:
        assert len(list(client.list_tasks(labels=_labels_of(result, "pcnode_register", task)))) == 1


def test_fanin_dag(pcnoded: Any, default_connection: None, run_dag: Callable[..., Any], client: Any) -> None:
    result = run_dag("pcnode_register")
    check_fanin(result, pcnoded, client)


def test_fanin_dag_deferrable(
    pcnoded: Any,
    images: dict[str, str],
    set_connection: Callable[..., None],
    run_dag: Callable[..., Any],
    client: Any,
) -> None:
    set_connection("pcnode_default", pcnoded.unix_address, data_root=pcnoded.data_root, deferrable=True)
    result = run_dag("pcnode_register")
    check_fanin(result, pcnoded, client)
    assert "[DAG TEST] running trigger in line" in result.output
    for task in ("download_fixed_image", "register_images"):
        assert f"pcnode task {result.xcoms[task]['task_id']} on node" in result.output


def test_exit_126_skips_and_exit_1_fails(default_connection: None, run_dag: Callable[..., Any], client: Any) -> None:
    result = run_dag("pcnode_outcomes")
    assert result.states == {"nothing_to_do": "skipped", "broken": "failed"}
    assert result.state == "failed"
    assert "no series to process" in result.log("nothing_to_do")
    assert "exit code 126 asks to skip" in result.log("nothing_to_do")
    assert "cannot read input" in result.log("broken")
    assert "reason NONZERO_EXIT, exit code 1" in result.log("broken")


def test_task_form_env_reaches_container(
    pcnoded: Any, images: dict[str, str], set_connection: Callable[..., None], run_dag: Callable[..., Any]
) -> None:
    set_connection(
        "pcnode_default",
        pcnoded.unix_address,
        data_root=pcnoded.data_root,
        env=[{"name": "SITE", "value": "from-the-connection"}, {"name": "LEVEL", "value": "connection"}],
    )
    conf = {"task_form": {"print_env": {"env": [{"name": "GREETING", "value": "from-task-form"}]}}}
    result = run_dag("pcnode_env", conf)
    log = result.log("print_env")
    assert result.states["print_env"] == "success", log
    assert "GREETING=from-task-form" in log  # task_form beats the operator
    assert "MODE=slow" in log  # operator beats the template
    assert "LEVEL=operator" in log  # operator beats the connection
    assert "SITE=from-the-connection" in log  # connection env reaches it
    assert "COUNT=3" in log  # template default kept
    assert "GREETING=from-the-dag" not in log


def test_retry_reattaches(default_connection: None, run_dag: Callable[..., Any], client: Any) -> None:
    result = run_dag("pcnode_retry")
    assert result.states == {"slow": "success"}, result.output[-4000:]
    tasks = list(client.list_tasks(labels=_labels_of(result, "pcnode_retry", "slow")))
    assert len(tasks) == 1, [t.id for t in tasks]
    assert tasks[0].spec.labels[_logic.LABEL_TRY] == "1"
    assert result.xcoms["slow"]["task_id"] == tasks[0].id
    log = result.log("slow")
    assert "simulated worker loss after submit" in log
    assert f"re-attaching to pcnode task {tasks[0].id}" in log
    assert "finished" in log


def test_multi_node_placement(
    pcnoded: Any,
    tcp_node: Callable[[str], dict[str, Any]],
    images: dict[str, str],
    set_connection: Callable[..., None],
    run_dag: Callable[..., Any],
) -> None:
    # One daemon reached two ways, as two nodes: "unix" (socket) and "tcp" (mutual TLS).
    unix = {"name": "unix", "host": pcnoded.unix_address}
    tcp = tcp_node("tcp")
    root = pcnoded.data_root
    set_connection("pcnode_nodes", None, data_root=root, nodes=[unix, tcp])
    set_connection("pcnode_unix_only", None, data_root=root, nodes=[unix])
    set_connection("pcnode_tcp_only", None, data_root=root, nodes=[tcp])
    result = run_dag("pcnode_nodes")
    assert result.xcoms["on_unix"]["node"] == "unix"
    assert result.xcoms["on_tcp"]["node"] == "tcp"
    # Both nodes fit with the same free resources: the first listed wins; the
    # downstream follows its upstream's node.
    assert result.xcoms["placed"]["node"] == "unix"
    assert "placing on node unix (of unix, tcp)" in result.log("placed")
    assert result.xcoms["follows_upstream"]["node"] == "unix"
    assert result.states["follows_upstream"] == "success"
    # Upstreams on two nodes without a shared data root: a clear error naming both.
    assert result.states["split_inputs"] == "failed"
    log = result.log("split_inputs")
    assert "node 'tcp' (upstream on_tcp)" in log, log
    assert "node 'unix' (upstream on_unix)" in log
    assert "shared_data_root" in log


def test_placement_by_capacity_on_two_daemons(
    pcnoded: Any,
    pcnoded_small: Any,
    images: dict[str, str],
    small_node_images: dict[str, str],
    set_connection: Callable[..., None],
    run_dag: Callable[..., Any],
) -> None:
    # Two real daemons on the same containerd: "small" (listed first, about
    # 512Mi allocatable) and "big" (the session daemon).
    small = {"name": "small", "host": pcnoded_small.unix_address, "data_root": pcnoded_small.data_root}
    big = {"name": "big", "host": pcnoded.unix_address, "data_root": pcnoded.data_root}
    set_connection("pcnode_capacity", None, data_root=pcnoded.data_root, nodes=[small, big])

    result = run_dag("pcnode_capacity")
    # 1Gi fits only the big node, whichever is listed first.
    assert result.states["big_job"] == "success"
    assert result.xcoms["big_job"]["node"] == "big"
    # 64Mi fits both now: the node with more free memory takes it.
    assert result.xcoms["small_job"]["node"] == "big"
    assert "placing on node big (of small, big)" in result.log("small_job")
    # 64Ti fits neither: the error names both nodes and why.
    assert result.states["too_big"] == "failed"
    log = result.log("too_big")
    assert "no node can take the task" in log, log
    assert "small: " in log, log
    assert "big: " in log, log

    # With the big node drained, what fits the small one goes there; the rest fails.
    with pcnoded.connect() as c:
        c.drain()
        try:
            result = run_dag("pcnode_capacity")
        finally:
            c.resume()
    assert result.states["small_job"] == "success"
    assert result.xcoms["small_job"]["node"] == "small"
    assert result.xcoms["small_job"]["outputs"]["downloads"]["path"].startswith(pcnoded_small.data_root + "/")
    assert result.states["big_job"] == "failed"
    assert "no node can take the task" in result.log("big_job")
    with pcnoded_small.connect() as c:
        on_small = list(c.list_tasks(labels={_logic.LABEL_DAG: "pcnode_capacity"}))
    assert [t.spec.labels[_logic.LABEL_TASK] for t in on_small] == ["small_job"]


def test_secret_env_reaches_container_not_logs_or_records(
    pcnoded: Any,
    images: dict[str, str],
    set_connection: Callable[..., None],
    run_dag: Callable[..., Any],
    client: Any,
) -> None:
    # A random 7-digit size: it cannot appear by chance in a timestamp or id of the log.
    value = str(1_000_000 + pysecrets.randbelow(1_000_000))
    pcnoded.write_secret("pytest-secret-size", value)
    try:
        set_connection(
            "pcnode_default",
            pcnoded.unix_address,
            data_root=pcnoded.data_root,
            secret_env={"SECRET_SIZE": "pytest-secret-size"},
        )
        result = run_dag("pcnode_secret")
    finally:
        (Path(pcnoded.secrets_dir) / "pytest-secret-size").unlink()
    assert result.states == {"use_secret": "success"}, result.log("use_secret")
    out = result.xcoms["use_secret"]["outputs"]["out"]
    assert out["bytes"] == int(value)
    assert (Path(out["path"]) / "secret.bin").stat().st_size == int(value)
    assert "writing the secret-sized file" in result.log("use_secret")
    assert value not in result.output
    task = client.get_task(result.xcoms["use_secret"]["task_id"])
    env = {e.name: e for e in task.spec.env}
    assert env["SECRET_SIZE"].secret == "pytest-secret-size"
    assert env["SECRET_SIZE"].value == ""
    assert value.encode() not in task.SerializeToString()
    for t in client.list_tasks(labels=_labels_of(result, "pcnode_secret", "use_secret")):
        assert value.encode() not in t.SerializeToString()


def test_on_kill_cancels_and_fails(default_connection: None, run_dag: Callable[..., Any], client: Any) -> None:
    # Airflow 3 calls on_kill from its SIGTERM handler without raising: send the
    # signal once the container runs and check that execute fails the task itself.
    want = {_logic.LABEL_DAG: "pcnode_kill", _logic.LABEL_TASK: "long_running"}
    before = {t.id for t in client.list_tasks(labels=want)}
    stop = threading.Event()

    def killer() -> None:
        while not stop.is_set():
            running = [
                t for t in client.list_tasks(labels=want, states=[task_pb2.TASK_STATE_RUNNING]) if t.id not in before
            ]
            if running:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.1)

    th = threading.Thread(target=killer, daemon=True)
    previous = signal.getsignal(signal.SIGTERM)
    th.start()
    try:
        result = run_dag("pcnode_kill")
    finally:
        stop.set()
        th.join(10)
        signal.signal(signal.SIGTERM, previous)  # the task runner's handler stays installed otherwise
    assert result.states == {"long_running": "failed"}
    (task,) = [t for t in client.list_tasks(labels=want) if t.id not in before]
    assert task.state == task_pb2.TASK_STATE_CANCELLED
    log = result.log("long_running")
    assert f"on_kill: cancelled pcnode task {task.id}" in log
    assert "the Airflow task was killed" in log
