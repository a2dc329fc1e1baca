"""The conformance corpus (daemon/spec/testdata/conformance) through Python.

The same files run through Go in daemon/spec/conformance_test.go; both must
reach each case's verdict and report every listed field path. A case marked
``"python": "node-only"`` hinges on a target_regex's program size, which only
the node checks ([limits] max_regex_insts): there Python must report exactly
the listed fields minus the target_regex ones, no more and no fewer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from kaapanatest import CONFORMANCE

from pcnode.kaapana import ValidationError, load_processing_container, load_task
from pcnode.kaapana.validate import check

CASES = sorted(CONFORMANCE.glob("*.json"))


def _as_go_reads(text: str) -> str:
    """A string as Go's JSON decoder reads it: a lone surrogate becomes U+FFFD."""
    return re.sub("[\ud800-\udfff]", "\ufffd", text)


def _load(path: Path) -> dict[str, Any]:
    case = json.loads(path.read_text())
    assert set(case) <= {"kind", "doc", "pc", "valid", "problems", "note", "python"}, f"{path.name}: unknown keys"
    assert case.get("python", "node-only") == "node-only", f"{path.name}: python is {case['python']!r}"
    assert case["kind"] in ("processing-container", "task")
    assert "pc" not in case or case["kind"] == "task"
    assert isinstance(case["valid"], bool)
    assert case["valid"] == (not case["problems"]), f"{path.name}: a valid case lists no problems, an invalid one some"
    return case


def _node_only(case: dict[str, Any]) -> bool:
    return case.get("python") == "node-only"


def _python_fields(case: dict[str, Any]) -> set[str]:
    """What Python must report of a node-only case: the listed fields but the target_regex ones."""
    return {f for f in case["problems"] if not f.endswith(".scale_rule.target_regex")}


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30, [p.name for p in CASES]
    node_only = sorted(p.stem for p in CASES if _node_only(json.loads(p.read_text())))
    assert len(node_only) >= 6, node_only
    assert all(n.startswith("pc-regex-") for n in node_only), node_only
    kinds = [json.loads(p.read_text())["kind"] for p in CASES]
    assert kinds.count("processing-container") >= 10
    assert kinds.count("task") >= 10


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path) -> None:
    case = _load(path)
    rep = check(case["kind"], case["doc"], processing_container=case.get("pc"))
    fields = [p.field for p in rep.problems]
    if _node_only(case):
        assert set(fields) == _python_fields(case), f"{path.name} ({case.get('note')}): problems {rep.problems}"
        return
    assert rep.valid == case["valid"], f"{path.name} ({case.get('note')}): problems {rep.problems}"
    for f in case["problems"]:
        assert f in fields, f"{path.name}: no problem at {f!r}; got {rep.problems}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case_through_loaders(path: Path) -> None:
    """load_processing_container and load_task agree with check: the model, or ValidationError."""
    case = _load(path)
    valid = case["valid"] or (_node_only(case) and not _python_fields(case))
    if case["kind"] == "processing-container":
        if valid:
            pc = load_processing_container(case["doc"])
            assert pc.name == _as_go_reads(case["doc"]["name"])
            return
        with pytest.raises(ValidationError) as ei:
            load_processing_container(case["doc"])
    else:
        if valid:
            t = load_task(case["doc"], processing_container=case.get("pc"))
            assert t.name == _as_go_reads(case["doc"]["name"])
            return
        with pytest.raises(ValidationError) as ei:
            load_task(case["doc"], processing_container=case.get("pc"))
    got = [p.field for p in ei.value.problems]
    for f in _python_fields(case) if _node_only(case) else case["problems"]:
        assert f in got
    assert all(isinstance(p, tuple) and len(p) == 2 for p in ei.value.problems)
