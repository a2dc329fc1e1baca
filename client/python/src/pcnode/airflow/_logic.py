"""Pure decisions of the pcnode Airflow operator: no Airflow, no gRPC.

Everything here takes plain values and returns plain values, so it is tested
exhaustively without a scheduler or a daemon: how env layers merge, the
idempotency key and labels of an Airflow task instance, where its outputs
live, which node takes it, and what its result means to Airflow.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pcnode.kaapana.quantity import QuantityError, parse_quantity

# Kaapana's convention: a processing-container that exits with this code asks
# for its Airflow task to be skipped.
SKIP_EXIT_CODE = 126

# The key under dag_run.conf that carries per-task user input (Kaapana's UI).
USER_INPUT_KEY = "task_form"

# Labels every task submitted from Airflow carries. LABEL_INSTANCE is the one
# looked up (a hash, so any dag/run/task spelling fits a label value); the
# others are for people.
LABEL_INSTANCE = "airflow.pcnode/ti"
LABEL_DAG = "airflow.pcnode/dag_id"
LABEL_RUN = "airflow.pcnode/run_id"
LABEL_TASK = "airflow.pcnode/task_id"
LABEL_MAP = "airflow.pcnode/map_index"
LABEL_TRY = "airflow.pcnode/try_number"
OWN_LABELS = (LABEL_INSTANCE, LABEL_DAG, LABEL_RUN, LABEL_TASK, LABEL_MAP, LABEL_TRY)

# Kaapana labels its processing pods so; kept for selection by the same label.
DEFAULT_LABELS = {"kaapana.ai/type": "processing-container"}

# The daemon's limits (daemon/validate.go, daemon/spec/validate_task.go).
MAX_IDEMPOTENCY_KEY = 128
MAX_LABEL_VALUE = 256

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SAFE_COMPONENT = re.compile(r"[A-Za-z0-9._-]")
_IDEM_KEY = re.compile(r"[A-Za-z0-9._:/@+=-]+\Z")
# A path component longer than this is cut and given a hash (255 is the
# usual file-name limit; the hash suffix needs 9 more).
_MAX_COMPONENT = 200


class ConfigError(ValueError):
    """ConfigError is raised for bad operator, connection or DAG-run input.

    field names what is wrong, spelled as the user wrote it (for example
    ``dag_run.conf.task_form.register.env[1].name``).
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _env_value(value: Any, field: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    raise ConfigError(field, f"value must be a string, number or boolean, not {type(value).__name__}")


def check_env_name(name: Any, field: str) -> str:
    """check_env_name returns name if it is a POSIX variable name, else raises ConfigError."""
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        raise ConfigError(field, f"env name {name!r} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)")
    return name


def env_pairs(value: Any, field: str) -> list[tuple[str, str]]:
    """env_pairs reads one env layer as (name, value) pairs, in order.

    A layer is None, a mapping of name to value, or a list of
    ``{"name": ..., "value": ...}`` dicts or objects with ``name`` and
    ``value`` attributes (Kaapana's ``pc_models.BaseEnv``). A later entry of
    the same name wins.
    """
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [(check_env_name(k, f"{field}.{k}"), _env_value(v, f"{field}.{k}")) for k, v in value.items()]
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(field, f"env must be a list of name/value entries or a mapping, not {type(value).__name__}")
    out: list[tuple[str, str]] = []
    for i, item in enumerate(value):
        f = f"{field}[{i}]"
        if isinstance(item, Mapping):
            unknown = sorted(set(item) - {"name", "value"})
            if unknown:
                raise ConfigError(f, f"unknown key {unknown[0]!r}; an env entry has name and value")
            if "name" not in item:
                raise ConfigError(f, "name is missing")
            name, val = item["name"], item.get("value", "")
        elif hasattr(item, "name") and hasattr(item, "value"):
            name, val = item.name, item.value
        else:
            raise ConfigError(f, f"an env entry must be a mapping or have name and value, not {type(item).__name__}")
        if val is None:
            val = ""
        out.append((check_env_name(name, f"{f}.name"), _env_value(val, f"{f}.value")))
    return out


def merge_env(*layers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """merge_env merges env layers, lowest first: a later layer's value wins.

    A name keeps the position where it first appeared, so the result is
    stable for the idempotency check however often a value is overridden.
    """
    merged: dict[str, str] = {}
    for layer in layers:
        for name, value in layer:
            merged[name] = value
    return list(merged.items())


def task_form(conf: Mapping[str, Any] | None, task_id: str) -> tuple[list[tuple[str, str]], list[str]]:
    """task_form reads ``conf["task_form"][task_id]``: its env layer and the keys it ignores.

    Kaapana's UI sends per-task user input there; env is a list of
    ``{name, value}`` or a mapping. Other keys are returned so that the
    operator can say it ignored them.
    """
    if not conf:
        return [], []
    forms = conf.get(USER_INPUT_KEY)
    if forms is None:
        return [], []
    base = f"dag_run.conf.{USER_INPUT_KEY}"
    if not isinstance(forms, Mapping):
        raise ConfigError(base, f"must be a mapping of task id to input, not {type(forms).__name__}")
    form = forms.get(task_id)
    if form is None:
        return [], []
    base = f"{base}.{task_id}"
    if not isinstance(form, Mapping):
        raise ConfigError(base, f"must be a mapping, not {type(form).__name__}")
    ignored = sorted(str(k) for k in form if k != "env")
    return env_pairs(form.get("env"), f"{base}.env"), ignored


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(list(parts), separators=(",", ":")).encode()).hexdigest()


def idempotency_key(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
    """idempotency_key is the submit key of one try of one Airflow task instance.

    The same inputs always give the same key, different ones practically
    never: "airflow:" and the SHA-256 of the five values, within the
    daemon's charset and length.
    """
    key = "airflow:" + _digest("try", dag_id, run_id, task_id, map_index, try_number)
    assert len(key) <= MAX_IDEMPOTENCY_KEY
    assert _IDEM_KEY.match(key)
    return key


def instance_label(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """instance_label identifies an Airflow task instance across its tries (the LABEL_INSTANCE value)."""
    return _digest("ti", dag_id, run_id, task_id, map_index)[:40]


def clip_label(value: str, most: int = MAX_LABEL_VALUE) -> str:
    """clip_label cuts value to most bytes of UTF-8, at a character boundary."""
    raw = value.encode()
    if len(raw) <= most:
        return value
    return raw[:most].decode(errors="ignore")


def task_labels(
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int,
    try_number: int,
    *,
    user: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """task_labels are the labels of one try: Kaapana's default, the DAG's, then pcnode's own.

    A DAG label may not use one of pcnode's own keys: those find a task
    again on a retry.
    """
    labels = dict(DEFAULT_LABELS)
    for k, v in (user or {}).items():
        if k in OWN_LABELS:
            raise ConfigError(f"labels.{k}", "is set by the operator and may not be given")
        if not isinstance(v, (str, int, float, bool)):
            raise ConfigError(f"labels.{k}", f"value must be a string, number or boolean, not {type(v).__name__}")
        labels[str(k)] = _env_value(v, f"labels.{k}")
    labels.update(
        {
            LABEL_INSTANCE: instance_label(dag_id, run_id, task_id, map_index),
            LABEL_DAG: clip_label(dag_id),
            LABEL_RUN: clip_label(run_id),
            LABEL_TASK: clip_label(task_id),
            LABEL_MAP: str(map_index),
            LABEL_TRY: str(try_number),
        }
    )
    return labels


def path_component(name: str) -> str:
    """path_component makes name safe as one directory name.

    Letters, digits, ".", "_" and "-" are kept, anything else becomes "_",
    a leading "." or "-" becomes "_" (so never "." or ".."), and a name that was
    changed or cut gets "-" and 8 hex digits of its hash, so two different
    names never share a directory.
    """
    safe = "".join(c if _SAFE_COMPONENT.match(c) else "_" for c in name)
    if safe[:1] in ("", ".", "-"):
        safe = "_" + safe[1:]
    if safe == name and 0 < len(safe) <= _MAX_COMPONENT:
        return safe
    return f"{safe[:_MAX_COMPONENT]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def check_data_root(data_root: Any, field: str) -> str:
    """check_data_root returns data_root normalised, or raises ConfigError if it is not an absolute path."""
    if not isinstance(data_root, str) or not data_root.startswith("/"):
        raise ConfigError(field, f"must be an absolute path, not {data_root!r}")
    if "\x00" in data_root:
        raise ConfigError(field, "must not contain NUL")
    if ".." in data_root.split("/"):
        raise ConfigError(field, f"must not contain '..': {data_root!r}")
    return posixpath.normpath(data_root)


def task_dir(data_root: str, dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """task_dir is ``<data_root>/<dag_id>/<run_id>/<task_id>[.<map_index>]``, each part made safe."""
    leaf = task_id if map_index < 0 else f"{task_id}.{map_index}"
    return posixpath.join(data_root, path_component(dag_id), path_component(run_id), path_component(leaf))


def output_dir(data_root: str, dag_id: str, run_id: str, task_id: str, map_index: int, *, channel: str) -> str:
    """output_dir is where one output channel of one task instance lives on the node."""
    return posixpath.join(task_dir(data_root, dag_id, run_id, task_id, map_index), path_component(channel))


@dataclass(frozen=True)
class Candidate:
    """Candidate is one node as placement sees it: its answer to ResolveTask and its free resources."""

    name: str
    fits_now: bool
    fits_node: bool
    problems: tuple[str, ...] = ()
    free_gpus: int = 0
    free_memory_bytes: int = 0
    free_cpu_millis: int = 0
    error: str = ""


class NoNodeError(ValueError):
    """NoNodeError says that no node can take a task, and why not, node by node."""

    def __init__(self, reasons: Mapping[str, str]) -> None:
        text = "; ".join(f"{n}: {r}" for n, r in reasons.items())
        super().__init__(f"no node can take the task ({text})")
        self.reasons = dict(reasons)


def choose_node(candidates: Sequence[Candidate]) -> str:
    """choose_node picks the node for a task.

    Nodes that answered with an error, found problems in the spec or can
    never fit it are out. Among the rest a node that fits now comes first;
    then the one with most free GPUs, then memory, then CPU; ties go to the
    earlier node in the connection's list.
    """
    reasons: dict[str, str] = {}
    fit: list[tuple[int, Candidate]] = []
    for i, c in enumerate(candidates):
        if c.error:
            reasons[c.name] = c.error
        elif c.problems:
            reasons[c.name] = "spec problems: " + "; ".join(c.problems)
        elif not c.fits_node:
            reasons[c.name] = "the task does not fit the node's allocatable resources"
        else:
            fit.append((i, c))
    if not fit:
        raise NoNodeError(reasons)
    fit.sort(
        key=lambda ic: (not ic[1].fits_now, -ic[1].free_gpus, -ic[1].free_memory_bytes, -ic[1].free_cpu_millis, ic[0])
    )
    return fit[0][1].name


def upstream_node(upstreams: Mapping[str, str], shared_data_root: bool) -> str | None:
    """upstream_node is the node a task must run on because of its inputs, or None.

    upstreams maps each upstream task id to the node its outputs are on.
    Without a shared data root a task runs where its inputs are, so
    upstreams on two nodes are an error naming both.
    """
    if shared_data_root or not upstreams:
        return None
    nodes = sorted(set(upstreams.values()))
    if len(nodes) > 1:
        by_node = {n: sorted(t for t, m in upstreams.items() if m == n) for n in nodes}
        text = " and ".join(f"node {n!r} (upstream {', '.join(ts)})" for n, ts in by_node.items())
        raise ConfigError(
            "iochannel_maps",
            f"inputs are on {text}; a task reads only one node's data root unless the connection sets shared_data_root",
        )
    return nodes[0]


@dataclass(frozen=True)
class Outcome:
    """Outcome is what a finished task means to Airflow: kind is "success", "skip" or "fail"."""

    kind: str
    message: str


def outcome(task_id: str, state: str, reason: str, exit_code: int, message: str) -> Outcome:
    """outcome maps a finished task (state and reason names without their enum prefix) to Airflow's terms.

    SUCCEEDED is success; exit code 126 is Kaapana's skip; everything else
    fails with the reason, the exit code and the daemon's message.
    """
    if state == "SUCCEEDED":
        return Outcome("success", f"pcnode task {task_id} succeeded")
    detail = f"pcnode task {task_id} {state.lower()}: reason {reason}, exit code {exit_code}"
    if message:
        detail += f": {message}"
    if reason == "NONZERO_EXIT" and exit_code == SKIP_EXIT_CODE:
        return Outcome("skip", f"exit code {SKIP_EXIT_CODE} asks to skip; {detail}")
    return Outcome("fail", detail)


def output_summary(
    host_path: str, files: Sequence[tuple[str, int, str]], file_count: int, total_bytes: int
) -> dict[str, Any]:
    """output_summary is one channel in the XCom: path, file and byte counts, and a short listing.

    files are (path, size, sha256); the listing holds at most the first 100,
    so the XCom stays small for channels with many files.
    """
    return {
        "path": host_path,
        "files": file_count,
        "bytes": total_bytes,
        "listing": [{"path": p, "size": s, "sha256": h} for p, s, h in files[:100]],
        "listing_truncated": len(files) > 100 or file_count > len(files),
    }


def _quantity(name: str, value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(field, f"must be a quantity such as '512Mi' or '500m', not {value!r}")
    try:
        return parse_quantity(name, str(value))
    except QuantityError as e:
        raise ConfigError(field, str(e)) from None


def resource_list(raw: Mapping[str, Any] | None, field: str) -> tuple[int, int, int, list[str]]:
    """resource_list reads Kaapana's {memory, cpu, nvidia.com/gpu} as (bytes, milli-CPU, GPUs) and ignored names.

    Quantities are read by pcnode.kaapana.quantity, the daemon's rules.
    """
    mem = cpu = gpus = 0
    ignored: list[str] = []
    for name, value in (raw or {}).items():
        f = f"{field}.{name}"
        if value is None:
            continue
        if name == "memory":
            mem = _quantity(name, value, f)
        elif name == "cpu":
            cpu = _quantity(name, value, f)
        elif name == "nvidia.com/gpu":
            gpus = _quantity(name, value, f)
        else:
            ignored.append(f)
    return mem, cpu, gpus, ignored
