"""Every processing-container.json and task.json Kaapana publishes, through Python.

Mirrors daemon/spec/published_test.go: each file passes the schema and the
rules (tasks with their placeholders substituted), except those in
published/rejected.json, which fail with the field paths listed there; each
valid task merges with the processing-container.json beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kaapanatest import KAAPANA, PUBLISHED, PUBLISHED_ENV

from pcnode.kaapana import load_processing_container, load_task, pc_models
from pcnode.kaapana.validate import check

REJECTED = {r["file"]: r for r in json.loads((PUBLISHED / "rejected.json").read_text())}


def _published() -> list[tuple[str, str]]:
    out = []
    for p in sorted(PUBLISHED.rglob("*.json")):
        rel = p.relative_to(PUBLISHED).as_posix()
        if p.parent == PUBLISHED:
            continue  # rejected.json
        if p.name == "processing-container.json":
            out.append((rel, "processing-container"))
        elif p.parent.name == "tasks":
            out.append((rel, "task"))
        else:
            raise AssertionError(f"{rel} is neither a processing-container.json nor a tasks/*.json")
    return out


FILES = _published()


def test_all_published_processing_containers_present() -> None:
    assert sum(1 for _, k in FILES if k == "processing-container") >= 37


@pytest.mark.parametrize(("rel", "kind"), FILES, ids=[r for r, _ in FILES])
def test_published_file(rel: str, kind: str) -> None:
    rep = check(kind, PUBLISHED / rel, env=PUBLISHED_ENV if kind == "task" else None)  # type: ignore[arg-type]
    r = REJECTED.get(rel)
    if r is None:
        assert rep.valid, rep.problems
        for w in rep.warnings:
            assert "ignored" in w.description, w
        return
    assert not rep.valid, f"{rel}: valid, want rejected ({r['reason']})"
    if r.get("syntax"):
        assert [p.field for p in rep.problems] == [""]
        assert "malformed JSON" in rep.problems[0].description
        return
    fields = [p.field for p in rep.problems]
    for f in r["problems"]:
        assert f in fields, f"{rel}: {rep.problems}, want one at {f!r}"


TASKS = [
    (rel, (Path(rel).parent.parent / "processing-container.json").as_posix())
    for rel, kind in FILES
    if kind == "task" and rel not in REJECTED and (PUBLISHED / rel).parent.parent.joinpath("processing-container.json").exists()
]


def test_enough_published_tasks() -> None:
    assert len(TASKS) >= 5


@pytest.mark.parametrize(("rel", "pc_rel"), TASKS, ids=[r for r, _ in TASKS])
def test_published_task_merges(rel: str, pc_rel: str) -> None:
    pc = load_processing_container(PUBLISHED / pc_rel)
    t = load_task(PUBLISHED / rel, processing_container=PUBLISHED / pc_rel, env=PUBLISHED_ENV)
    assert isinstance(t.taskTemplate, str)
    assert pc.template(t.taskTemplate) is not None
    assert "{{" not in t.image


@pytest.mark.parametrize(
    "rel",
    ["dummy/processing-container.json", "get-input/processing-container.json"],
)
def test_kaapana_examples(rel: str) -> None:
    pc = load_processing_container(KAAPANA / rel)
    assert isinstance(pc, pc_models.ProcessingContainer)
    assert pc.templates


def test_kaapana_example_tasks() -> None:
    pc = KAAPANA / "dummy" / "processing-container.json"
    for f in sorted((KAAPANA / "dummy" / "tasks").glob("*.json")):
        t = load_task(f, processing_container=pc, env=PUBLISHED_ENV)
        assert t.image.startswith("registry.example.org:5000/")
        for b in [*t.inputs, *t.outputs]:
            assert b.volume_source.host_path.startswith("/data/")
