"""Python's reading of Kaapana task files against Go's, on the same files.

A session fixture builds cmd/pcnode-cli; ``pcnode-cli resolve --pc`` merges each
task with its template offline (no daemon). Python's resolve_instance must give
the same instance, and the TaskSpec Python builds from the file must carry
the same template identifier, channel bindings, env and resources.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kaapanatest import KAAPANA, PUBLISHED, PUBLISHED_ENV

from pcnode.kaapana import resolve_instance, task_spec_from_file

REJECTED = {r["file"] for r in json.loads((PUBLISHED / "rejected.json").read_text())}


def _task_files() -> list[tuple[Path, Path]]:
    out = [
        (f, KAAPANA / "dummy" / "processing-container.json")
        for f in sorted((KAAPANA / "dummy" / "tasks").glob("*.json"))
    ]
    for f in sorted(PUBLISHED.rglob("tasks/*.json")):
        pc = f.parent.parent / "processing-container.json"
        rel = f.relative_to(PUBLISHED).as_posix()
        if rel in REJECTED or not pc.exists() or pc.relative_to(PUBLISHED).as_posix() in REJECTED:
            continue
        out.append((f, pc))
    return out


TASKS = _task_files()


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    # Host paths that do not exist: Go's scale rules then measure 0 bytes and
    # change nothing, so its resolve is a plain merge.
    root = tmp_path_factory.mktemp("data") / "absent"
    return {**PUBLISHED_ENV, "input_dir": str(root / "in"), "output_dir": str(root / "out")}


def _go_instance(cli: Path, task: Path, pc: Path, env: dict[str, str]) -> dict[str, Any]:
    proc_env = {k: v for k, v in os.environ.items() if k not in env}
    proc_env.update(env)
    res = subprocess.run(
        [str(cli), "resolve", "--pc", str(pc), str(task), "-o", "json"],
        env=proc_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(res.stdout)
    assert report["problems"] == []
    return report["instance"]


def test_enough_tasks() -> None:
    assert len(TASKS) >= 7


@pytest.mark.parametrize(("task", "pc"), TASKS, ids=[t.relative_to(KAAPANA).as_posix() for t, _ in TASKS])
def test_instance_matches_go(pcnode_cli: Path, env: dict[str, str], task: Path, pc: Path) -> None:
    want = _go_instance(pcnode_cli, task, pc, env)
    got = resolve_instance(task, pc, env=env)
    assert got.image == want["image"]
    assert got.template_identifier == want["template_identifier"]
    assert [(e.name, e.value) for e in got.env] == [(e["name"], e["value"]) for e in want["env"] or []]
    assert list(got.command) == (want["command"] or [])
    for lst, wlst in ((got.inputs, want["inputs"]), (got.outputs, want["outputs"])):
        assert [(m.name, m.host_path, m.mounted_path, m.read_only) for m in lst] == [
            (m["name"], m["host_path"], m["mounted_path"], m["read_only"]) for m in wlst or []
        ]
    for which in ("requests", "limits"):
        g = getattr(got.resources, which)
        w = want["resources"][which]
        assert (g.memory_bytes, g.cpu_millis, g.gpus) == (w["memory_bytes"], w["cpu_millis"], w["gpus"])


@pytest.mark.parametrize(("task", "pc"), TASKS, ids=[t.relative_to(KAAPANA).as_posix() for t, _ in TASKS])
def test_task_spec_matches_go(pcnode_cli: Path, env: dict[str, str], task: Path, pc: Path) -> None:
    want = _go_instance(pcnode_cli, task, pc, env)
    spec = task_spec_from_file(task, env=env, processing_container=pc)
    assert spec.template_identifier == want["template_identifier"]
    assert spec.image == want["image"]
    for lst, wlst in ((spec.inputs, want["inputs"]), (spec.outputs, want["outputs"])):
        # An input and an output may share a name: compare list by list.
        assert sorted((b.name, b.host_path) for b in lst) == sorted((m["name"], m["host_path"]) for m in wlst or [])
    final = {e["name"]: e["value"] for e in want["env"] or []}
    for e in spec.env:
        assert final[e.name] == e.value
    for which in ("requests", "limits"):
        s = getattr(spec.resources, which)
        w = want["resources"][which]
        for f, key in (("memory_bytes", "memory_bytes"), ("cpu_millis", "cpu_millis"), ("gpus", "gpus")):
            if getattr(s, f):
                assert getattr(s, f) == w[key]
