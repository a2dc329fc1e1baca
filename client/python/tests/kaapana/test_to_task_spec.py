"""to_task_spec and merge_env: Kaapana-style values into a pcnode.v1 TaskSpec."""

from __future__ import annotations

from pathlib import Path

import pytest
from kaapanatest import KAAPANA

from pcnode.kaapana import SecretEnv, ValidationError, load_task, merge_env, pc_models, task_models, to_task_spec
from pcnode.v1 import template_pb2

DUMMY_PC = KAAPANA / "dummy" / "processing-container.json"


def test_identifier_and_keywords() -> None:
    spec = to_task_spec(
        "upstream",
        image="registry.example.org/dummy:1",
        env=[pc_models.BaseEnv(name="TIME_SLEEP", value="1"), {"name": "EXTRA", "value": 5}],
        outputs={"channel1": "/data/run/up/channel1", "channel2": Path("/data/run/up/channel2")},
        resources=pc_models.Resources(limits={"memory": "2Gi", "nvidia.com/gpu": 1}, requests={"cpu": "500m"}),
        command=["python3", "-u", "upstream.py"],
        labels={"kaapana.ai/dag": "fanin", "try": 2},
    )
    assert spec.template_identifier == "upstream"
    assert spec.name == "upstream"
    assert spec.image == "registry.example.org/dummy:1"
    assert [(e.name, e.value) for e in spec.env] == [("TIME_SLEEP", "1"), ("EXTRA", "5")]
    assert [(b.name, b.host_path) for b in spec.outputs] == [
        ("channel1", "/data/run/up/channel1"),
        ("channel2", "/data/run/up/channel2"),
    ]
    assert spec.resources.limits.memory_bytes == 2 << 30
    assert spec.resources.limits.gpus == 1
    assert spec.resources.requests.cpu_millis == 500
    assert list(spec.command) == ["python3", "-u", "upstream.py"]
    assert dict(spec.labels) == {"kaapana.ai/dag": "fanin", "try": "2"}


def test_checked_against_the_processing_container() -> None:
    spec = to_task_spec(
        "downstream",
        image="registry.example.org/dummy:1",
        inputs={"channel1": "/data/a", "channel2": "/data/b"},
        processing_container=DUMMY_PC,
    )
    assert spec.template_identifier == "downstream"
    with pytest.raises(ValidationError) as ei:
        to_task_spec(
            "downstream",
            image="registry.example.org/dummy:1",
            inputs={"channel1": "/data/a"},
            processing_container=DUMMY_PC,
        )
    assert [p.field for p in ei.value.problems] == ["inputs"]
    with pytest.raises(ValidationError) as ei:
        to_task_spec("nope", image="registry.example.org/dummy:1", processing_container=DUMMY_PC)
    assert [p.field for p in ei.value.problems] == ["taskTemplate"]


def test_every_problem_with_go_field_paths() -> None:
    with pytest.raises(ValidationError) as ei:
        to_task_spec(
            "t",
            image="Not An Image",
            env={"1BAD": "x"},
            outputs={"out": "relative/path"},
            resources={"limits": {"memory": "2GB", "nvidia.com/gpu": "0.5"}},
            labels={"bad key": "v"},
        )
    fields = {p.field for p in ei.value.problems}
    assert fields == {
        "image",
        "env[0].name",
        "outputs[0].volume_source.host_path",
        "resources.limits.memory",
        'resources.limits["nvidia.com/gpu"]',
        'config.labels["bad key"]',
    }
    assert all(desc for _, desc in ei.value.problems)


def test_task_json_values_then_overrides() -> None:
    task = load_task(
        KAAPANA / "dummy" / "tasks" / "downstream-task.json",
        env={"output_dir": "/data", "registryUrl": "r.example.org"},
    )
    spec = to_task_spec(
        task,
        env={"TIME_SLEEP": "9"},
        inputs=[task_models.IOVolume(name="channel2", volume_source=task_models.HostPathVolume(host_path="/other"))],
        resources={"limits": {"cpu": 2}},
    )
    assert spec.name == "Test downstream task"
    assert spec.image == "r.example.org/dummy:latest"
    assert [(b.name, b.host_path) for b in spec.inputs] == [
        ("channel1", "/data/dummy/channel1"),
        ("channel2", "/other"),
    ]
    assert spec.inputs[0].scale_rule.scale_factor == 25
    assert spec.inputs[0].scale_rule.mode == template_pb2.SCALE_RULE_MODE_SUM
    assert [(e.name, e.value) for e in spec.env] == [("TIME_SLEEP", "9")]
    # Resources are overridden key by key: the task's memory limit stays.
    assert spec.resources.limits.memory_bytes == 50 << 20
    assert spec.resources.limits.cpu_millis == 2000


def test_inline_template() -> None:
    tmpl = pc_models.TaskTemplate(
        identifier="inline",
        description="d",
        inputs=[],
        outputs=[pc_models.IOMount(name="out", mounted_path="/out")],
        env=[pc_models.TaskTemplateEnv(name="N", value="1", type="int", choices=["1", "2"], adjustable=False)],
    )
    spec = to_task_spec(tmpl, image="x:1", outputs={"out": "/data/out"})
    assert spec.WhichOneof("template") == "inline_template"
    env = spec.inline_template.env[0]
    assert (env.type, list(env.choices), env.adjustable) == (template_pb2.ENV_VAR_TYPE_INTEGER, ["1", "2"], False)
    with pytest.raises(ValidationError) as ei:
        to_task_spec(
            tmpl.model_copy(update={"outputs": [pc_models.IOMount(name="out", mounted_path="out")]}), image="x:1"
        )
    assert "taskTemplate.outputs[0].mounted_path" in [p.field for p in ei.value.problems]


def test_secret_env() -> None:
    spec = to_task_spec(
        "t", image="x:1", env=[SecretEnv(name="PASSWORD", secret="project-password"), {"name": "USER", "value": "u"}]
    )
    assert [(e.name, e.value, e.secret) for e in spec.env] == [("PASSWORD", "", "project-password"), ("USER", "u", "")]
    with pytest.raises(ValidationError) as ei:
        to_task_spec("t", image="x:1", env=[{"name": "PASSWORD", "secret": "../shadow"}])
    assert [p.field for p in ei.value.problems] == ["env[0].secret"]
    pc = pc_models.ProcessingContainer(
        name="p",
        description="d",
        templates=[
            pc_models.TaskTemplate(
                identifier="t",
                description="d",
                inputs=[],
                outputs=[],
                env=[pc_models.TaskTemplateEnv(name="N", value="1", type="int")],
            )
        ],
    )
    with pytest.raises(ValidationError) as ei:
        to_task_spec("t", image="x:1", env=[SecretEnv(name="N", secret="s")], processing_container=pc)
    assert [p.field for p in ei.value.problems] == ["env[0].secret"]


def test_merge_env_layers() -> None:
    merged = merge_env(
        [pc_models.BaseEnv(name="A", value="template"), pc_models.BaseEnv(name="B", value="template")],
        {"SITE": "s", "A": "site"},
        [{"name": "B", "value": True}],
        [{"name": "A", "value": 3}, {"name": "TOKEN", "secret": "tok"}],
    )
    assert [e.to_json_dict() for e in merged] == [
        {"name": "A", "value": "3"},
        {"name": "B", "value": "true"},
        {"name": "SITE", "value": "s"},
        {"name": "TOKEN", "secret": "tok"},
    ]


@pytest.mark.parametrize(
    "bad", [[("A", "1")], [{"name": "A", "value": None}], [{"name": "A", "value": "x", "secret": "s"}]]
)
def test_merge_env_refuses_what_no_env_holds(bad: list[object]) -> None:
    with pytest.raises((TypeError, ValueError)):
        merge_env(bad)  # type: ignore[arg-type]
