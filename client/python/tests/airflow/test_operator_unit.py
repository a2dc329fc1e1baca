"""The operator without a daemon: serialization, secrets kept out of it, log printing by sequence."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from airflow.sdk import DAG
from airflow.serialization.serialized_objects import DagSerialization

from pcnode.airflow import IOMapping, KaapanaTaskOperator, PcnodeTaskOperator
from pcnode.airflow.operator import _Remote
from pcnode.kaapana import pc_models
from pcnode.v1 import task_pb2


def _dag() -> DAG:
    with DAG("unit", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)) as dag:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            up = KaapanaTaskOperator(
                task_id="up",
                image="registry.example.org/kaapana/dummy:1",
                taskTemplate="upstream",
                registryUsername="kaapana",
                registryPassword="hunter2-not-in-dags",
                resources=pc_models.Resources(limits={"memory": "1Gi"}),
            )
        assert any("registry credentials in an Airflow connection" in str(w.message) for w in caught)
        PcnodeTaskOperator(
            task_id="down",
            image="registry.example.org/kaapana/dummy:1",
            taskTemplate="downstream",
            env=[pc_models.BaseEnv(name="A", value="1")],
            iochannel_maps=[
                IOMapping(upstream_operator=up, upstream_output_channel="channel1", input_channel="channel1")
            ],
        )
    return dag


def test_dag_serializes_without_password_and_wires_upstreams() -> None:
    dag = _dag()
    assert dag.task_dict["down"].upstream_task_ids == {"up"}  # from iochannel_maps alone
    text = json.dumps(DagSerialization.to_dict(dag))
    assert "hunter2-not-in-dags" not in text
    assert "hunter2-not-in-dags" not in repr(dag.task_dict["up"])
    again = DagSerialization.from_dict(json.loads(text))
    assert set(again.task_dict) == {"up", "down"}


def test_kaapana_name_is_the_same_class() -> None:
    assert KaapanaTaskOperator is PcnodeTaskOperator


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image": "", "taskTemplate": "t"}, "image must be a non-empty string"),
        ({"image": "i", "taskTemplate": ""}, "taskTemplate must be a non-empty string"),
        ({"image": "i", "taskTemplate": "t", "iochannel_maps": [object()]}, "iochannel_maps"),
    ],
)
def test_constructor_rejects(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        PcnodeTaskOperator(task_id="bad", **kwargs)  # type: ignore[arg-type]


def test_iomapping_checks_its_fields() -> None:
    with pytest.raises(TypeError, match="upstream_operator"):
        IOMapping(upstream_operator="up", upstream_output_channel="a", input_channel="b")
    op = PcnodeTaskOperator(task_id="up", image="i", taskTemplate="t")
    with pytest.raises(TypeError, match="input_channel"):
        IOMapping(upstream_operator=op, upstream_output_channel="a", input_channel="")


def test_print_skips_what_was_printed_and_marks_stderr() -> None:
    op = PcnodeTaskOperator(task_id="t", image="i", taskTemplate="t")
    lines: list[str] = []
    op.log.info = lambda fmt, *a: lines.append(fmt % a)  # type: ignore[method-assign]

    def entries() -> Iterator[task_pb2.LogEntry]:
        # A reconnect that delivered 2 again, then 3 (stderr) and 4 without a newline.
        for seq, stream, data in [
            (1, task_pb2.LOG_STREAM_STDOUT, b"one\n"),
            (2, task_pb2.LOG_STREAM_STDOUT, b"two\n"),
            (2, task_pb2.LOG_STREAM_STDOUT, b"two\n"),
            (3, task_pb2.LOG_STREAM_STDERR, b"three\n"),
            (4, task_pb2.LOG_STREAM_STDOUT, b"f\xffour"),
        ]:
            yield task_pb2.LogEntry(sequence=seq, stream=stream, data=data)

    remote = _Remote(node="n", task_id="T", printed=1)
    op._print(entries(), remote)
    assert lines == ["two", "[stderr] three", "f\ufffdour"]
    assert remote.printed == 4
