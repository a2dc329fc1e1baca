"""The Go spec package's types, field paths and problem collector, in Python.

These plain classes mirror daemon/spec/types.go so that the checks in
_reader and _rules can follow the Go code line by line; the public models are
in pc_models and task_models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

# Resource names (daemon/spec/quantity.go).
RESOURCE_MEMORY = "memory"
RESOURCE_CPU = "cpu"
RESOURCE_GPU = "nvidia.com/gpu"

# Env types; "" accepts any string. Kaapana's spellings are aliases.
ENV_TYPES = ("string", "integer", "number", "boolean")
ENV_ALIASES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


def canonical_env_type(t: str) -> str:
    """The canonical name of an env type spelling (unknown ones unchanged)."""
    return ENV_ALIASES.get(t, t)


@dataclass
class ScaleRule:
    scale_factor: int = 0
    type: str = ""
    mode: str = ""
    target_dir: str = ""
    target_regex: str = ""
    target_glob: str = ""

    def with_defaults(self) -> "ScaleRule":
        return ScaleRule(
            self.scale_factor,
            self.type,
            self.mode,
            self.target_dir,
            self.target_regex or ".*",
            self.target_glob or "*",
        )


@dataclass
class ResourceList:
    memory_bytes: int = 0
    cpu_millis: int = 0
    gpus: int = 0

    def override(self, o: "ResourceList") -> "ResourceList":
        return ResourceList(
            o.memory_bytes or self.memory_bytes,
            o.cpu_millis or self.cpu_millis,
            o.gpus or self.gpus,
        )


@dataclass
class Resources:
    requests: ResourceList = field(default_factory=ResourceList)
    limits: ResourceList = field(default_factory=ResourceList)


@dataclass
class EnvVarTemplate:
    name: str = ""
    value: str = ""
    description: str = ""
    type: str = ""
    choices: Optional[List[str]] = None
    adjustable: Optional[bool] = None

    def is_adjustable(self) -> bool:
        return self.adjustable is None or self.adjustable


@dataclass
class Channel:
    name: str = ""
    mounted_path: str = ""
    description: str = ""
    scale_rule: Optional[ScaleRule] = None


@dataclass
class TaskTemplate:
    identifier: str = ""
    description: str = ""
    env: List[EnvVarTemplate] = field(default_factory=list)
    inputs: List[Channel] = field(default_factory=list)
    outputs: List[Channel] = field(default_factory=list)
    command: List[str] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)


@dataclass
class ProcessingContainer:
    name: str = ""
    description: str = ""
    api_version: int = 0
    templates: List[TaskTemplate] = field(default_factory=list)

    def template(self, identifier: str) -> Tuple[Optional[TaskTemplate], int]:
        for i, t in enumerate(self.templates):
            if t.identifier == identifier:
                return t, i
        return None, -1


@dataclass
class Binding:
    name: str = ""
    host_path: str = ""
    scale_rule: Optional[ScaleRule] = None


@dataclass
class EnvVar:
    name: str = ""
    value: str = ""


@dataclass
class Placeholder:
    field: str
    variable: str


@dataclass
class Task:
    name: str = ""
    image: str = ""
    api_version: int = 0
    template_identifier: str = ""
    inline_template: Optional[TaskTemplate] = None
    inputs: List[Binding] = field(default_factory=list)
    outputs: List[Binding] = field(default_factory=list)
    env: List[EnvVar] = field(default_factory=list)
    command: List[str] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    labels: Optional[Dict[str, str]] = None
    placeholders: List[Placeholder] = field(default_factory=list)

    def placeholder_at(self, f: str) -> bool:
        return any(p.field == f for p in self.placeholders)


@dataclass
class Mount:
    name: str
    host_path: str
    mounted_path: str
    read_only: bool


@dataclass
class Instance:
    image: str = ""
    template_identifier: str = ""
    env: List[EnvVar] = field(default_factory=list)
    command: List[str] = field(default_factory=list)
    inputs: List[Mount] = field(default_factory=list)
    outputs: List[Mount] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)


@dataclass
class Limits:
    """daemon/spec/limits.go's Limits; defaults are DefaultLimits()."""

    max_env_entries: int = 1024
    max_env_choices: int = 256
    max_command_args: int = 4096
    max_channels: int = 64
    max_pattern_bytes: int = 1024
    max_regex_insts: int = 2000
    max_exec_bytes: int = 1 << 20
    max_labels: int = 64
    max_label_bytes: int = 16 << 10
    min_memory_bytes: int = 6 << 20
    min_cpu_millis: int = 10
    max_cpu_millis: int = 1024 * 1000


class Collector:
    """Gathers problems and warnings while walking a specification."""

    def __init__(self, limits: Optional[Limits] = None):
        self.problems: List[Tuple[str, str]] = []
        self.warnings: List[Tuple[str, str]] = []
        self.limits = limits if limits is not None else Limits()

    def problem(self, f: str, description: str) -> None:
        self.problems.append((f, description))

    def warn(self, f: str, description: str) -> None:
        self.warnings.append((f, description))


# Field paths, as daemon/spec/decode.go writes them: "a.b[2].c", with keys
# that are not plain words quoted: limits["nvidia.com/gpu"].


def plain_key(k: str) -> bool:
    if not k:
        return False
    return all(c.isascii() and (c.isalnum() or c in "_-") for c in k)


def go_quote(s: str) -> str:
    """Go's strconv.Quote, close enough for field paths (JSON-style escapes)."""
    return json.dumps(s, ensure_ascii=False)


def join_field(path: str, name: str) -> str:
    if not plain_key(name):
        return f"{path}[{go_quote(name)}]"
    if not path:
        return name
    return f"{path}.{name}"


def index_field(path: str, i: int) -> str:
    return f"{path}[{i}]"


def clip(s: str) -> str:
    """Shortens s for a message, as Go's clip does."""
    return s if len(s) <= 40 else s[:40] + "..."


def quote_list(items: List[str]) -> str:
    shown = [go_quote(clip(s)) for s in items[:10]]
    if len(items) > 10:
        shown.append(f"... {len(items) - 10} more")
    return "[" + ", ".join(shown) + "]"


def blen(s: str) -> int:
    """Length in bytes, as Go's len counts a string."""
    return len(s.encode("utf-8", "surrogatepass"))
