"""The conformance corpus (daemon/spec/testdata/conformance) through Python.

The same files run through Go in daemon/spec/conformance_test.go; both must
reach each case's verdict and report every listed field path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kaapanatest import CONFORMANCE

from pcnode.kaapana import ValidationError, load_processing_container, load_task
from pcnode.kaapana.validate import check

CASES = sorted(CONFORMANCE.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    case = json.loads(path.read_text())
    assert set(case) <= {"kind", "doc", "pc", "valid", "problems", "note"}, f"{path.name}: unknown keys"
    assert case["kind"] in ("processing-container", "task")
    assert "pc" not in case or case["kind"] == "task"
    assert isinstance(case["valid"], bool)
    assert case["valid"] == (not case["problems"]), f"{path.name}: a valid case lists no problems, an invalid one some"
    return case


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30, [p.name for p in CASES]
    kinds = [json.loads(p.read_text())["kind"] for p in CASES]
    assert kinds.count("processing-container") >= 10
    assert kinds.count("task") >= 10


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path) -> None:
    case = _load(path)
    rep = check(case["kind"], case["doc"], processing_container=case.get("pc"))
    fields = [p.field for p in rep.problems]
    assert rep.valid == case["valid"], f"{path.name} ({case.get('note')}): problems {rep.problems}"
    for f in case["problems"]:
        assert f in fields, f"{path.name}: no problem at {f!r}; got {rep.problems}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case_through_loaders(path: Path) -> None:
    """load_processing_container and load_task agree with check: the model, or ValidationError."""
    case = _load(path)
    if case["kind"] == "processing-container":
        if case["valid"]:
            pc = load_processing_container(case["doc"])
            assert pc.name == case["doc"]["name"]
            return
        with pytest.raises(ValidationError) as ei:
            load_processing_container(case["doc"])
    else:
        if case["valid"]:
            t = load_task(case["doc"], processing_container=case.get("pc"))
            assert t.name == case["doc"]["name"]
            return
        with pytest.raises(ValidationError) as ei:
            load_task(case["doc"], processing_container=case.get("pc"))
    got = [p.field for p in ei.value.problems]
    for f in case["problems"]:
        assert f in got
    assert all(isinstance(p, tuple) and len(p) == 2 for p in ei.value.problems)
