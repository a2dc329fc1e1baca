"""Python against Go on every conformance case and on documents neither side has
seen: the cases mutated at random (seeded: the same documents every run), through
``pcnode-cli validate -o json`` and through pcnode.kaapana.validate.check.
Both must report exactly the same set of field paths, for problems and for
warnings, but for one thing only the node checks: a target_regex whose program
has more instructions than [limits] max_regex_insts (Go's problem says so;
Python checks the syntax and the byte cap only), left out of Go's side.
"""

from __future__ import annotations

import copy
import json
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kaapanatest import CONFORMANCE

from pcnode.kaapana.validate import check

_VALUES: list[Any] = [
    "", "x", "/abs", "rel/p", "/a/../b", "/proc/1", "1", "-1", "1.5", "true", "True", "2Gi", "500m", "0.5",
    "1e40", "{{ env.X }}", "{{ bad }}", "a\u202eb", "int", "str", "bool", "float", "double", "sum",
    "max_item_sum", "limit", "request", ".*", "(", "(?=a)", r"\pL", "[a-", "**/x", "../x",
    "registry.example.org/x:1", "UPPER/x", "x@sha256:" + "a" * 64, "s.1", None, 0, 1, 2.5, -3, True, False,
    [], {}, ["a"], {"a": 1},
]  # fmt: skip
N = 250


def _paths(v: Any, pre: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield pre
    if isinstance(v, dict):
        for k, x in v.items():
            yield from _paths(x, (*pre, k))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from _paths(x, (*pre, i))


def _mutate(rng: random.Random, doc: Any) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 4)):
        ps = list(_paths(doc))[1:]
        if not ps:
            break
        p = rng.choice(ps)
        parent = doc
        for k in p[:-1]:
            parent = parent[k]
        k = p[-1]
        r = rng.random()
        if r < 0.25 and isinstance(parent, dict):
            del parent[k]
        elif r < 0.35 and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[k]))
        elif r < 0.45 and isinstance(parent, list):
            del parent[k]
        elif r < 0.5 and isinstance(parent, dict):
            parent[f"unknown_{rng.randint(0, 9)}"] = copy.deepcopy(rng.choice(_VALUES))
        else:
            parent[k] = copy.deepcopy(rng.choice(_VALUES))
    return doc


def _cases() -> list[dict[str, Any]]:
    rng = random.Random(20261201)
    seeds = [json.loads(p.read_text()) for p in sorted(CONFORMANCE.glob("*.json"))]
    # The cases themselves first: there too the two sides report the same fields, not only the listed ones.
    out = [{k: c[k] for k in ("kind", "doc", "pc") if k in c} for c in seeds]
    for _ in range(N):
        c = rng.choice(seeds)
        case = {"kind": c["kind"], "doc": _mutate(rng, c["doc"])}
        if "pc" in c:
            case["pc"] = c["pc"] if rng.random() < 0.7 else _mutate(rng, c["pc"])
        out.append(case)
    return out


def _go_fields(cli: Path, tmp: Path, i: int, case: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The fields of the problems and of the warnings pcnode-cli validate reports."""
    doc = tmp / f"{i}.json"
    doc.write_text(json.dumps(case["doc"]))
    kind = "pc" if case["kind"] == "processing-container" else "task"
    args = [str(cli), "validate", "--schema", kind, "-o", "json", str(doc)]
    if "pc" in case:
        pc = tmp / f"{i}.pc.json"
        pc.write_text(json.dumps(case["pc"]))
        args[2:2] = ["--pc", str(pc)]
    res = subprocess.run(args, capture_output=True, text=True, check=False)
    assert res.returncode in (0, 1), res.stderr
    rep = json.loads(res.stdout)
    problems = {p["field"] for p in rep["problems"] if not p["description"].endswith("([limits] max_regex_insts)")}
    return problems, {w["field"] for w in rep["warnings"]}


def test_python_and_go_report_the_same_fields(pcnode_cli: Path, tmp_path: Path) -> None:
    disagree = []
    for i, case in enumerate(_cases()):
        want = _go_fields(pcnode_cli, tmp_path, i, case)
        rep = check(case["kind"], case["doc"], processing_container=case.get("pc"))
        got = {p.field for p in rep.problems}, {w.field for w in rep.warnings}
        if got != want:
            disagree.append((i, sorted(want), sorted(got)))
    assert not disagree, f"{len(disagree)} documents differ (case, Go, Python): {disagree[:5]}"


@pytest.mark.parametrize("n", [N])
def test_enough_documents(n: int) -> None:
    cases = _cases()
    assert len(cases) == n + len(list(CONFORMANCE.glob("*.json")))
    assert sum(c["kind"] == "task" for c in cases) > n // 4
