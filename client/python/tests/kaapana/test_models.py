"""The pydantic models under Kaapana's names, and reading files into them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kaapanatest import KAAPANA, SPEC_TESTDATA

from pcnode.kaapana import ValidationError, load_processing_container, load_task, pc_models, task_models
from pcnode.kaapana.validate import check

DUMMY_PC = KAAPANA / "dummy" / "processing-container.json"


def test_kaapana_dag_names() -> None:
    env = pc_models.BaseEnv(name="DATASET", value="REGISTERED")
    assert env.to_json_dict() == {"name": "DATASET", "value": "REGISTERED"}
    res = pc_models.Resources(limits={"memory": "2Gi", "nvidia.com/gpu": 1}, requests={"cpu": "500m"})
    assert res.to_json_dict() == {"limits": {"memory": "2Gi", "nvidia.com/gpu": 1}, "requests": {"cpu": "500m"}}
    with pytest.raises(ValueError, match="value"):
        pc_models.BaseEnv(name="N", value=5)  # type: ignore[arg-type]
    assert pc_models.EnvType.canonical("int") is pc_models.EnvType.integer
    assert pc_models.EnvType.canonical("long") is None


def test_loaded_models() -> None:
    pc = load_processing_container(DUMMY_PC)
    assert isinstance(pc, pc_models.ProcessingContainer)
    tmpl = pc.template("downstream")
    assert tmpl is not None
    assert isinstance(tmpl.inputs[0], pc_models.IOMount)
    assert tmpl.inputs[0].scale_rule is None or isinstance(tmpl.inputs[0].scale_rule, pc_models.ScaleRule)
    assert [e.name for e in tmpl.env_defaults()] == [e.name for e in tmpl.env]
    assert pc.problems() == []
    # A model round-trips through its JSON form.
    assert load_processing_container(pc.to_json_dict()) == pc


def test_model_problems_as_go_names_them() -> None:
    pc = load_processing_container(DUMMY_PC)
    bad = pc.model_copy(deep=True)
    bad.templates[0].env.append(bad.templates[0].env[0].model_copy())
    fields = [p.field for p in bad.problems()]
    assert fields == [f"templates[0].env[{len(bad.templates[0].env) - 1}].name"]
    assert [p.field for p in bad.templates[0].problems()] == [f"env[{len(bad.templates[0].env) - 1}].name"]
    t = task_models.Task(name="n", image="BAD IMAGE", taskTemplate="t")
    assert [p.field for p in t.problems()] == ["image"]


def test_task_labels_and_secret_env() -> None:
    t = load_task(
        {
            "name": "n",
            "image": "x:1",
            "taskTemplate": "t",
            "config": {"type": "k8s", "namespace": "ignored", "labels": {"team": "a", "n": 1, "b": False}},
            "env": [{"name": "PASSWORD", "secret": "pw"}, {"name": "A", "value": "1"}],
        }
    )
    assert t.labels() == {"team": "a", "n": "1", "b": "false"}
    assert isinstance(t.config, task_models.K8sConfig)
    plain = task_models.Task(name="n", image="x:1", taskTemplate="t", config={"labels": {"a": "b"}})
    assert type(plain.config) is task_models.BaseConfig
    assert isinstance(t.env[0], pc_models.SecretEnv)
    assert isinstance(t.env[1], pc_models.BaseEnv)


def test_load_from_path_bytes_text_and_dict(tmp_path: Path) -> None:
    data = DUMMY_PC.read_bytes()
    f = tmp_path / "pc.json"
    f.write_bytes(data)
    for doc in (f, str(f), data, json.loads(data)):
        assert load_processing_container(doc).name == "Dummy-processing-container"


@pytest.mark.parametrize(
    "data",
    [b"{", b'{"name": NaN}', b"{} {}", b"[" * 70 + b"]" * 70, b"\xff\xfe"],
    ids=["truncated", "nan", "two-values", "too-deep", "not-utf8"],
)
def test_not_json(data: bytes) -> None:
    with pytest.raises(ValidationError) as ei:
        load_processing_container(data)
    assert [p.field for p in ei.value.problems] == [""]


def test_file_too_large(tmp_path: Path) -> None:
    f = tmp_path / "big.json"
    f.write_bytes(b" " * (4 << 20) + b"{}")
    rep = check("processing-container", f)
    assert not rep.valid
    assert "too large" in rep.problems[0].description


def test_unknown_fields_and_duplicate_keys_are_warnings() -> None:
    doc = (SPEC_TESTDATA / "kaapana" / "dummy" / "processing-container.json").read_text()
    doc = doc.replace('"name"', '"extra": 1, "name"', 1).replace(
        '"description"', '"description": "x", "description"', 1
    )
    rep = check("processing-container", doc.encode())
    assert rep.valid, rep.problems
    assert {w.field for w in rep.warnings} >= {"extra", "description"}


def test_placeholders() -> None:
    task = KAAPANA / "dummy" / "tasks" / "downstream-task.json"
    rep = check("task", task)
    assert rep.valid
    assert ("inputs[0].volume_source.host_path", "output_dir") in rep.placeholders
    with pytest.raises(ValidationError) as ei:
        load_task(task, env={"output_dir": "/data"})
    assert "image" in [p.field for p in ei.value.problems]  # registryUrl is not set
    t = load_task(task, env={"output_dir": "/data", "registryUrl": "r.example.org"})
    assert t.inputs[0].volume_source.host_path == "/data/dummy/channel1"


def test_placeholders_in_ignored_fields_stay() -> None:
    t = load_task(
        {
            "name": "n",
            "image": "{{ env.R }}/x:1",
            "taskTemplate": "t",
            "unknown": "{{ not a placeholder }}",
            "config": {"namespace": "{{ custom }}", "labels": {"registry": "{{ env.R }}"}},
        },
        env={"R": "r.example.org"},
    )
    assert t.image == "r.example.org/x:1"
    assert t.labels() == {"registry": "r.example.org"}
