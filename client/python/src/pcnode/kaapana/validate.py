"""Checking processing-container.json and task.json files the way pcnode's daemon does.

A document is checked as ``pcnode-cli validate`` checks it: first against the
JSON Schemas the Go daemon embeds (daemon/spec/schema, shipped byte for byte in
``pcnode/kaapana/schema/``), then read and held to the semantic rules of Go's
daemon/spec (unique names, env values of their type and within choices,
mounted paths, quantities, scale rules, image references, limits). A task
given with its processing-container is also merged with its template (the
template exists, every channel is bound and only known ones are, env
overrides are allowed). A schema problem is dropped when a semantic check
names the same field, as the Go command does.

Every problem is a ``(field, description)`` :class:`~pcnode.kaapana.Problem`
whose field path is spelled as Go spells it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union

import jsonschema

from pcnode.kaapana import _json, _reader, _rules
from pcnode.kaapana import _spec as s
from pcnode.kaapana.problems import Problem, SpecWarning

__all__ = [
    "Document",
    "Kind",
    "Report",
    "check",
    "processing_container_problems",
    "schema_bytes",
    "schema_problems",
    "task_problems",
    "template_problems",
]

#: Which format a document is in.
Kind = Literal["processing-container", "task"]

#: What the checks accept: a path to a file, the file's bytes or text, or the
#: decoded JSON (a dict, as from json.load or written in a DAG).
Document = Union[str, "os.PathLike[str]", bytes, Mapping[str, Any]]

_SCHEMA_FILES = {
    "processing-container": "processing-container.schema.json",
    "task": "task.schema.json",
}


def schema_bytes(kind: Kind) -> bytes:
    """The JSON Schema of a format, as the Go daemon embeds it."""
    return resources.files("pcnode.kaapana").joinpath("schema", _SCHEMA_FILES[kind]).read_bytes()


@cache
def _validator(kind: Kind) -> jsonschema.protocols.Validator:
    schema = json.loads(schema_bytes(kind))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)  # type: ignore[no-any-return]


def _field_path(tokens: Any) -> str:
    out = ""
    for t in tokens:
        t = str(t)
        if t != "" and t.isascii() and t.isdigit():
            out += f"[{t}]"
        elif s.plain_key(t):
            out += ("." if out else "") + t
        else:
            out += f"[{s.go_quote(t)}]"
    return out


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _type_only(errs: list[jsonschema.ValidationError], loc: list[Any]) -> jsonschema.ValidationError | None:
    """The branch's only failure when it is a type mismatch at loc, else None."""
    while True:
        if len(errs) != 1:
            return None
        e = errs[0]
        if e.validator == "type" and not e.context and list(e.absolute_path) == loc:
            return e
        if not e.context:
            return None
        errs = list(e.context)


def _collect(e: jsonschema.ValidationError, out: list[Problem]) -> None:
    loc = list(e.absolute_path)
    if e.validator == "required":
        inst = e.instance if isinstance(e.instance, dict) else {}
        for name in e.validator_value:
            if name not in inst:
                p = Problem(_field_path([*loc, name]), "required")
                if p not in out:
                    out.append(p)
        return
    if e.validator in ("anyOf", "oneOf") and e.context:
        branches: dict[Any, list[jsonschema.ValidationError]] = {}
        for c in e.context:
            branches.setdefault(c.relative_schema_path[0], []).append(c)
        keep: list[list[jsonschema.ValidationError]] = []
        wants: list[str] = []
        for errs in branches.values():
            t = _type_only(errs, loc)
            if t is not None:
                want = t.validator_value
                wants.extend(want if isinstance(want, list) else [want])
                continue
            keep.append(errs)
        if not keep:
            out.append(Problem(_field_path(loc), f"got {_json_type(e.instance)}, want {' or '.join(wants)}"))
            return
        for errs in keep:
            for c in errs:
                _collect(c, out)
        return
    if e.context:
        for c in e.context:
            _collect(c, out)
        return
    out.append(Problem(_field_path(loc), e.message))


def schema_problems(kind: Kind, doc: Any) -> list[Problem]:
    """Every violation of the format's JSON Schema by a decoded document."""
    out: list[Problem] = []
    for e in sorted(_validator(kind).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        _collect(e, out)
    return out


class Report:
    """The outcome of :func:`check`: problems, warnings and placeholders left as they are."""

    def __init__(self, problems: list[Problem], warnings: list[SpecWarning], placeholders: list[tuple[str, str]]):
        self.problems = problems
        self.warnings = warnings
        #: ``(field, variable)`` of every ``{{ env.NAME }}`` left unsubstituted.
        self.placeholders = placeholders

    @property
    def valid(self) -> bool:
        return not self.problems


def _read(doc: Any) -> _json.JValue:
    """Decodes a Document into the reader's tree (raises _json.SyntaxProblem)."""
    if isinstance(doc, (bytes, bytearray)):
        return _json.decode(bytes(doc))
    if isinstance(doc, (str, os.PathLike)):
        p = Path(doc)
        size = p.stat().st_size
        if size > _json.MAX_FILE_SIZE:
            raise _json.SyntaxProblem(f"file too large: {size} bytes, at most {_json.MAX_FILE_SIZE}")
        return _json.decode(p.read_bytes())
    if hasattr(doc, "to_json_dict"):
        doc = doc.to_json_dict()
    if isinstance(doc, Mapping):
        return _json.from_plain(dict(doc))
    raise TypeError(f"a document is a path, bytes or a dict, not {type(doc).__name__}")


def _lookup(env: Mapping[str, str] | Callable[[str], str | None] | None) -> Callable[[str], str | None] | None:
    if env is None:
        return None
    if isinstance(env, Mapping):
        return env.get
    return env


def check(
    kind: Kind,
    doc: Document,
    *,
    processing_container: Document | None = None,
    env: Mapping[str, str] | Callable[[str], str | None] | None = None,
) -> Report:
    """Checks a document of the given kind; see the module doc.

    ``processing_container`` (tasks only) is the processing-container.json the
    task is merged with. ``env`` substitutes a task's ``{{ env.NAME }}``
    placeholders (a variable it lacks is a problem); without it they are left
    as they are, listed in the report, and the fields holding them are not
    checked for their form.
    """
    try:
        root = _read(doc)
    except _json.SyntaxProblem as e:
        return Report([Problem("", str(e))], [], [])
    return _check_tree(kind, root, processing_container, _lookup(env))


def _check_tree(
    kind: Kind,
    root: _json.JValue,
    processing_container: Document | None,
    lookup: Callable[[str], str | None] | None,
) -> Report:
    schema = schema_problems(kind, _json.to_plain(root))
    sem: list[Problem] = []
    warnings: list[SpecWarning] = []
    placeholders: list[tuple[str, str]] = []

    def add(ps: list[tuple[str, str]]) -> None:
        for p in ps:
            q = Problem(*p)
            if q not in sem:
                sem.append(q)

    if kind == "processing-container":
        pc, r = _reader.parse_processing_container(root)
        warnings += [SpecWarning(*w) for w in r.warnings]
        add(r.problems)
        c = s.Collector()
        _rules.validate_processing_container(c, pc)
        add(c.problems)
    else:
        t, r = _reader.parse_task(root, lookup)
        warnings += [SpecWarning(*w) for w in r.warnings]
        add(r.problems)
        placeholders = [(p.field, p.variable) for p in t.placeholders]
        pc = None
        if processing_container is not None:
            try:
                pc_root = _read(processing_container)
            except _json.SyntaxProblem as e:
                add([("", f"processing-container: {e}")])
            else:
                pc, pr = _reader.parse_processing_container(pc_root)
                warnings += [SpecWarning(*w) for w in pr.warnings]
                add(pr.problems)
        c = s.Collector()
        if pc is None:
            _rules.validate_task(c, t)
        else:
            _rules.merge_within(c, pc, t)
            warnings += [SpecWarning(*w) for w in c.warnings]
        add(c.problems)
    fields = {p.field for p in sem}
    problems = sem + [p for p in schema if p.field not in fields]
    return Report(problems, warnings, placeholders)


def processing_container_problems(doc: Document) -> list[Problem]:
    """Every problem of a processing-container.json, as the Go daemon reports them."""
    return check("processing-container", doc).problems


def task_problems(
    doc: Document,
    *,
    processing_container: Document | None = None,
    env: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Every problem of a task.json (merged with its processing-container when given)."""
    return check("task", doc, processing_container=processing_container, env=env).problems


def template_problems(doc: Mapping[str, Any]) -> list[Problem]:
    """Every problem of one task template on its own, fields named from the template."""
    try:
        root = _json.from_plain(dict(doc))
    except _json.SyntaxProblem as e:
        return [Problem("", str(e))]
    r = _reader.Reader()
    t = r.template(root, "")
    c = s.Collector()
    _rules.validate_template(c, t, "")
    out: list[Problem] = []
    for p in [*r.problems, *c.problems]:
        if Problem(*p) not in out:
            out.append(Problem(*p))
    return out
