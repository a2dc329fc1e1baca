"""Reading Kaapana files into models, and Kaapana-style values into a ``TaskSpec``.

:func:`load_processing_container` and :func:`load_task` read a file (path,
bytes or dict) with the Go daemon's rules (see :mod:`pcnode.kaapana.validate`)
and return the pydantic models, or raise :class:`~pcnode.kaapana.ValidationError`.
:func:`to_task_spec` builds the ``pcnode.v1`` ``TaskSpec`` an operator submits.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Union

from pydantic import BaseModel

from pcnode.kaapana import _json, _reader
from pcnode.kaapana import _spec as s
from pcnode.kaapana.pc_models import BaseEnv, ProcessingContainer, Resources, TaskTemplate
from pcnode.kaapana.problems import Problem, ValidationError
from pcnode.kaapana.task_models import IOVolume, Task
from pcnode.kaapana.validate import Document, _check_tree, _lookup, _read
from pcnode.v1 import task_pb2, template_pb2

__all__ = [
    "SecretEnv",
    "label_text",
    "load_processing_container",
    "load_task",
    "merge_env",
    "task_spec_from",
    "task_spec_from_file",
    "to_task_spec",
]

EnvLookup = Union[Mapping[str, str], Callable[[str], Union[str, None]], None]


class SecretEnv(BaseModel):
    """An environment variable whose value is a node secret, named, never given.

    The daemon reads the secret's content from its secret store when it
    creates the container; the spec, the task record and logs carry only
    ``secret``, the secret's name.
    """

    name: str
    secret: str


#: One environment variable as :func:`to_task_spec` and :func:`merge_env` take it.
EnvItem = Union[BaseEnv, SecretEnv, Mapping[str, Any]]
#: Env as a list of variables, or a mapping of name to value.
EnvLike = Union[Iterable[EnvItem], Mapping[str, Any], None]
#: Channel bindings as a mapping of channel name to host path, or a list of
#: IOVolume (or its dict form, ``{"name": ..., "volume_source": {"host_path": ...}}``).
BindingsLike = Union[Mapping[str, Union[str, "os.PathLike[str]"]], Iterable[Union[IOVolume, Mapping[str, Any]]], None]


def label_text(v: Any) -> str:
    """A label or env value as text: strings as they are, booleans as true/false, numbers as JSON writes them."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{v} is not a value an environment variable or label can hold")
        return json.dumps(v)
    if isinstance(v, str):
        return v
    raise TypeError(f"a value is a string, number or boolean, not {type(v).__name__}")


def _strip_nulls(v: Any) -> Any:
    # Go's reader reads a member that is null as absent.
    if isinstance(v, dict):
        return {k: _strip_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_strip_nulls(x) for x in v]
    return v


def _substitute_doc(doc: dict[str, Any], lookup: Callable[[str], str | None]) -> dict[str, Any]:
    """Substitutes placeholders where Go's ParseTask does (not in ignored runner settings)."""
    from pcnode.kaapana._text import substitute

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return substitute(v, lookup)[0]
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    out = {k: (walk(v) if k != "config" else v) for k, v in doc.items()}
    cfg = doc.get("config")
    if isinstance(cfg, dict) and isinstance(cfg.get("labels"), dict):
        out["config"] = {**cfg, "labels": walk(cfg["labels"])}
    return out


def load_processing_container(doc: Document) -> ProcessingContainer:
    """Reads and checks a processing-container.json (a path, bytes, or dict).

    Raises :class:`ValidationError` listing every problem, fields spelled as
    Go spells them, and its ``warnings`` (what pcnode ignores).
    """
    try:
        root = _read(doc)
    except _json.SyntaxProblem as e:
        raise ValidationError("processing-container.json", [("", str(e))]) from None
    rep = _check_tree("processing-container", root, None, None)
    if rep.problems:
        raise ValidationError("processing-container.json", rep.problems, rep.warnings)
    return ProcessingContainer.model_validate(_strip_nulls(_json.to_plain(root)))


def load_task(
    doc: Document,
    *,
    processing_container: Document | None = None,
    env: EnvLookup = None,
) -> Task:
    """Reads and checks a task.json (a path, bytes, or dict).

    With ``processing_container`` the task is also merged with its template
    (the template exists, channels are bound, env overrides are allowed).
    ``env`` (a mapping or a lookup function) substitutes ``{{ env.NAME }}``
    placeholders; a variable it lacks is a problem. Without it placeholders
    stay in the returned model as written. Raises :class:`ValidationError`.
    """
    try:
        root = _read(doc)
    except _json.SyntaxProblem as e:
        raise ValidationError("task.json", [("", str(e))]) from None
    lookup = _lookup(env)
    rep = _check_tree("task", root, processing_container, lookup)
    if rep.problems:
        raise ValidationError("task.json", rep.problems, rep.warnings)
    plain = _strip_nulls(_json.to_plain(root))
    if lookup is not None:
        plain = _substitute_doc(plain, lookup)
    return Task.model_validate(plain)


def _env_items(env: EnvLike) -> list[tuple[str, str | None, str | None]]:
    """(name, value, secret) for every variable, in order."""
    if env is None:
        return []
    out: list[tuple[str, str | None, str | None]] = []
    if isinstance(env, Mapping):
        for k, v in env.items():
            out.append((str(k), label_text(v), None))
        return out
    for item in env:
        if isinstance(item, SecretEnv):
            out.append((item.name, None, item.secret))
        elif isinstance(item, BaseEnv):
            out.append((item.name, item.value, None))
        elif isinstance(item, Mapping):
            if "secret" in item and item.get("secret") is not None:
                if item.get("value") not in (None, ""):
                    raise ValueError(f"env {item.get('name')!r}: give a value or a secret, not both")
                out.append((str(item["name"]), None, str(item["secret"])))
            else:
                out.append((str(item["name"]), label_text(item["value"]), None))
        else:
            raise TypeError(f"an env entry is a BaseEnv, SecretEnv or dict, not {type(item).__name__}")
    return out


def merge_env(*layers: EnvLike) -> list[BaseEnv | SecretEnv]:
    """Merges env layers by name as Kaapana's merge_env does: a later value
    replaces an earlier one in place, a new name is appended.

    Each layer is a list of BaseEnv / SecretEnv / ``{"name", "value"}`` dicts,
    or a mapping of name to value (numbers and booleans become their JSON text).
    """
    merged: dict[str, BaseEnv | SecretEnv] = {}
    for layer in layers:
        for name, value, secret in _env_items(layer):
            merged[name] = SecretEnv(name=name, secret=secret) if secret is not None else BaseEnv(name=name, value=value or "")
    return list(merged.values())


def _binding_items(b: BindingsLike) -> list[dict[str, Any]]:
    if b is None:
        return []
    if isinstance(b, Mapping):
        return [{"name": str(k), "volume_source": {"host_path": os.fspath(v)}} for k, v in b.items()]
    out: list[dict[str, Any]] = []
    for item in b:
        if isinstance(item, BaseModel):
            out.append(item.model_dump(mode="json", exclude_none=True))
        elif isinstance(item, Mapping):
            out.append(dict(item))
        else:
            raise TypeError(f"a channel binding is an IOVolume or dict, not {type(item).__name__}")
    return out


def _merge_by_name(base: list[dict[str, Any]], over: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = list(base)
    for o in over:
        for i, b in enumerate(out):
            if b.get("name") == o.get("name"):
                out[i] = o
                break
        else:
            out.append(o)
    return out


def _resources_dict(r: Resources | Mapping[str, Any] | None) -> dict[str, Any]:
    if r is None:
        return {}
    if isinstance(r, BaseModel):
        return r.model_dump(mode="json", exclude_none=True)
    return {k: dict(v) for k, v in r.items() if v is not None}


def to_task_spec(
    task: str | TaskTemplate | Task | Mapping[str, Any],
    *,
    image: str | None = None,
    name: str | None = None,
    env: EnvLike = None,
    inputs: BindingsLike = None,
    outputs: BindingsLike = None,
    resources: Resources | Mapping[str, Any] | None = None,
    command: Sequence[str] | None = None,
    labels: Mapping[str, Any] | None = None,
    processing_container: Document | ProcessingContainer | None = None,
) -> task_pb2.TaskSpec:
    """Builds a ``pcnode.v1.TaskSpec`` from Kaapana-style values, checked as Go checks a task.json.

    ``task`` is what the task runs: a template identifier (Kaapana's
    ``taskTemplate="..."``), a :class:`~pcnode.kaapana.pc_models.TaskTemplate`
    given in full (an inline template), or a whole task.json (a
    :class:`~pcnode.kaapana.task_models.Task` or its dict), whose values the
    keywords then override:

    - ``image``, ``name``: replace the task's (``name`` defaults to the
      template identifier).
    - ``env``: list of ``pc_models.BaseEnv``, :class:`SecretEnv` or
      ``{"name", "value"}`` / ``{"name", "secret"}`` dicts, or a mapping of name
      to value; merged over the task's env by name (:func:`merge_env`; layer
      template defaults, site env, operator env, task_form env with it first).
      Numbers and booleans become their JSON text (``true``, ``5``).
    - ``inputs``, ``outputs``: mapping of channel name to host path, or a list
      of ``task_models.IOVolume`` (or its dict); merged over the task's by name.
    - ``resources``: ``pc_models.Resources`` (Kaapana's quantity strings,
      ``{"limits": {"memory": "2Gi", "nvidia.com/gpu": 1}}``) or its dict;
      each quantity given overrides the task's.
    - ``command``: replaces the task's command (and so the template's).
    - ``labels``: merged over the task's ``config.labels``.
    - ``processing_container``: when given, the spec is also merged with the
      template it names (as ``pcnode-cli validate --pc``): unknown template,
      unbound or unknown channels, and disallowed env overrides are problems.

    Placeholders (``{{ env.NAME }}``) are not substituted here; load a
    task.json with :func:`load_task` and ``env=`` for that.

    Raises :class:`ValidationError` with every problem, fields spelled as in a
    task.json (``env[2].value``, ``inputs[0].volume_source.host_path``,
    ``resources.limits.memory``, ``taskTemplate``), and ``ValueError`` /
    ``TypeError`` for values no task.json could hold. Secret env variables need
    a ``pcnode.v1.EnvVar`` with a ``secret`` field (the node secret store).
    """
    doc: dict[str, Any]
    if isinstance(task, str):
        doc = {"taskTemplate": task}
    elif isinstance(task, TaskTemplate):
        doc = {"taskTemplate": task.to_json_dict()}
    elif isinstance(task, Task):
        doc = task.to_json_dict()
    elif isinstance(task, Mapping):
        doc = _strip_nulls(json.loads(json.dumps(dict(task))))
    else:
        raise TypeError(f"task is a template identifier, TaskTemplate, Task or dict, not {type(task).__name__}")
    if image is not None:
        doc["image"] = image
    if name is not None:
        doc["name"] = name
    if "name" not in doc:
        tt = doc.get("taskTemplate")
        doc["name"] = tt if isinstance(tt, str) else (tt or {}).get("identifier", "") if isinstance(tt, dict) else ""
    doc.setdefault("image", "")

    secrets: dict[str, str] = {}
    task_env = [e for e in doc.get("env") or [] if isinstance(e, dict)]
    if env is not None or any("secret" in e for e in task_env):
        merged = merge_env(doc.get("env") or [], env)
        doc["env"] = []
        for e in merged:
            if isinstance(e, SecretEnv):
                secrets[e.name] = e.secret
                doc["env"].append({"name": e.name, "value": ""})
            else:
                doc["env"].append({"name": e.name, "value": e.value})
    if inputs is not None:
        doc["inputs"] = _merge_by_name(list(doc.get("inputs") or []), _binding_items(inputs))
    if outputs is not None:
        doc["outputs"] = _merge_by_name(list(doc.get("outputs") or []), _binding_items(outputs))
    if resources is not None:
        base = dict(doc.get("resources") or {})
        for lst, quantities in _resources_dict(resources).items():
            base[lst] = {**dict(base.get(lst) or {}), **quantities}
        doc["resources"] = base
    if command is not None:
        doc["command"] = list(command)
    if labels is not None:
        cfg = dict(doc.get("config") or {})
        cfg["labels"] = {**dict(cfg.get("labels") or {}), **{str(k): label_text(v) for k, v in labels.items()}}
        doc["config"] = cfg

    try:
        root = _json.from_plain(doc)
    except _json.SyntaxProblem as e:
        raise ValidationError("task", [("", str(e))]) from None
    pc_doc: Any = processing_container
    if isinstance(pc_doc, ProcessingContainer):
        pc_doc = pc_doc.to_json_dict()
    rep = _check_tree("task", root, pc_doc, None)
    problems: list[Problem] = list(rep.problems)
    for i, e in enumerate(doc.get("env") or []):
        if e["name"] in secrets:
            why = _secret_name_problem(secrets[e["name"]])
            if why:
                problems.append(Problem(f"env[{i}].secret", why))
    if problems:
        raise ValidationError("task", problems, rep.warnings)
    t, _ = _reader.parse_task(root, None)
    spec = task_spec_from(t)
    if secrets:
        if "secret" not in task_pb2.EnvVar.DESCRIPTOR.fields_by_name:
            raise ValueError("this pcnode.v1 has no EnvVar.secret: the node secret store is not available")
        for ev in spec.env:
            if ev.name in secrets:
                ev.ClearField("value")
                setattr(ev, "secret", secrets[ev.name])  # noqa: B010 - field added with the secret store
    return spec


def _secret_name_problem(name: str) -> str:
    import re

    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", name, re.ASCII) is None:
        return f"{s.go_quote(s.clip(name))} is not a secret name ([A-Za-z0-9][A-Za-z0-9._-]{{0,62}})"
    return ""


# --- spec types to the v1 API (daemon/specpb in Python) ----------------------

_ENV_TYPES = {
    "": template_pb2.ENV_VAR_TYPE_UNSPECIFIED,
    "string": template_pb2.ENV_VAR_TYPE_STRING,
    "integer": template_pb2.ENV_VAR_TYPE_INTEGER,
    "number": template_pb2.ENV_VAR_TYPE_NUMBER,
    "boolean": template_pb2.ENV_VAR_TYPE_BOOLEAN,
}
_MODES = {
    "sum": template_pb2.SCALE_RULE_MODE_SUM,
    "max_file_size": template_pb2.SCALE_RULE_MODE_MAX_FILE_SIZE,
    "max_item_sum": template_pb2.SCALE_RULE_MODE_MAX_ITEM_SUM,
}
_TYPES = {"limit": template_pb2.SCALE_RULE_TYPE_LIMIT, "request": template_pb2.SCALE_RULE_TYPE_REQUEST}


def _scale_rule(r: s.ScaleRule | None) -> template_pb2.ScaleRule | None:
    if r is None:
        return None
    return template_pb2.ScaleRule(
        scale_factor=r.scale_factor,
        type=_TYPES.get(r.type, template_pb2.SCALE_RULE_TYPE_UNSPECIFIED),
        mode=_MODES.get(r.mode, template_pb2.SCALE_RULE_MODE_UNSPECIFIED),
        target_dir=r.target_dir,
        target_regex=r.target_regex,
        target_glob=r.target_glob,
    )


def _resources(r: s.Resources) -> template_pb2.ResourceRequirements:
    def lst(x: s.ResourceList) -> template_pb2.ResourceList:
        return template_pb2.ResourceList(memory_bytes=x.memory_bytes, cpu_millis=x.cpu_millis, gpus=x.gpus)

    return template_pb2.ResourceRequirements(requests=lst(r.requests), limits=lst(r.limits))


def template_spec_from(t: s.TaskTemplate) -> template_pb2.TaskTemplate:
    out = template_pb2.TaskTemplate(
        identifier=t.identifier,
        description=t.description,
        command=list(t.command),
        resources=_resources(t.resources),
    )
    for e in t.env:
        ev = out.env.add(
            name=e.name,
            value=e.value,
            description=e.description,
            type=_ENV_TYPES.get(s.canonical_env_type(e.type), template_pb2.ENV_VAR_TYPE_UNSPECIFIED),
            choices=list(e.choices or []),
        )
        if e.adjustable is not None:
            ev.adjustable = e.adjustable
    for lst, chans in ((out.inputs, t.inputs), (out.outputs, t.outputs)):
        for c in chans:
            ct = lst.add(name=c.name, mounted_path=c.mounted_path, description=c.description)
            sr = _scale_rule(c.scale_rule)
            if sr is not None:
                ct.scale_rule.CopyFrom(sr)
    return out


def task_spec_from(t: s.Task) -> task_pb2.TaskSpec:
    """Go's specpb.TaskSpec: a read task.json as the API's TaskSpec."""
    out = task_pb2.TaskSpec(name=t.name, image=t.image, command=list(t.command), labels=dict(t.labels or {}))
    out.resources.CopyFrom(_resources(t.resources))
    if t.inline_template is not None:
        out.inline_template.CopyFrom(template_spec_from(t.inline_template))
    else:
        out.template_identifier = t.template_identifier
    for lst, binds in ((out.inputs, t.inputs), (out.outputs, t.outputs)):
        for b in binds:
            cb = lst.add(name=b.name, host_path=b.host_path)
            sr = _scale_rule(b.scale_rule)
            if sr is not None:
                cb.scale_rule.CopyFrom(sr)
    for e in t.env:
        out.env.add(name=e.name, value=e.value)
    return out


def task_spec_from_file(
    doc: Document, *, env: EnvLookup = None, processing_container: Document | None = None
) -> task_pb2.TaskSpec:
    """Reads a task.json (placeholders substituted from ``env``) straight into a TaskSpec.

    Raises :class:`ValidationError`.
    """
    try:
        root = _read(doc)
    except _json.SyntaxProblem as e:
        raise ValidationError("task.json", [("", str(e))]) from None
    lookup = _lookup(env)
    rep = _check_tree("task", root, processing_container, lookup)
    if rep.problems:
        raise ValidationError("task.json", rep.problems, rep.warnings)
    t, _ = _reader.parse_task(root, lookup)
    return task_spec_from(t)

