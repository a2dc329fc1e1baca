"""Models of a processing-container.json, under the names Kaapana's DAGs use.

A Kaapana DAG imports ``from pcnode.kaapana import pc_models`` and builds
``pc_models.BaseEnv(name=..., value=...)`` and ``pc_models.Resources(limits=...,
requests=...)`` exactly as it does with Kaapana's Task API. The models carry
the shapes of the file (Kaapana's spelling: resource quantities are strings or
numbers keyed ``memory``, ``cpu`` and ``nvidia.com/gpu``), plus the env fields
pcnode adds, ``type`` and ``adjustable``.

The models check only the JSON types of their fields. The rules pcnode's Go
daemon applies (unique names, env values of their type and within choices,
mounted paths, quantities, scale rules) are checked by
:func:`pcnode.kaapana.load_processing_container`, which reads a file or dict
the way the daemon does and raises :class:`pcnode.kaapana.ValidationError`;
:meth:`ProcessingContainer.problems` and :meth:`TaskTemplate.problems` run the
same checks on a model built in Python.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from pcnode.kaapana.problems import Problem

__all__ = [
    "BaseEnv",
    "BaseTask",
    "EnvType",
    "IOBase",
    "IOMount",
    "ProcessingContainer",
    "Quantity",
    "Resources",
    "ScaleRule",
    "ScaleRuleMode",
    "ScaleRuleType",
    "TaskTemplate",
    "TaskTemplateEnv",
]

#: A Kubernetes quantity as a processing-container.json or task.json writes
#: it: a string such as ``"500Mi"``, ``"1.5Gi"``, ``"2"`` or ``"500m"``, or a
#: plain number.
Quantity = Union[str, int, float]


class _Model(BaseModel):
    # Unknown keys are dropped here; load_processing_container and load_task
    # report them as warnings, as the Go daemon does.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def to_json_dict(self) -> Dict[str, Any]:
        """Returns the model as the JSON object a file would hold (aliases, no nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class BaseEnv(_Model):
    """One environment variable: a name and a string value."""

    name: str
    value: str


class EnvType(str, Enum):
    """The declared type of a template variable (pcnode extension).

    Kaapana's published files spell the types the Python way; pcnode reads
    ``int``, ``str``, ``float`` and ``bool`` as ``integer``, ``string``,
    ``number`` and ``boolean``.
    """

    string = "string"
    integer = "integer"
    number = "number"
    boolean = "boolean"

    @classmethod
    def canonical(cls, spelling: str) -> Optional["EnvType"]:
        """Returns the type a spelling (canonical or alias) names, or None."""
        name = ENV_TYPE_ALIASES.get(spelling, spelling)
        try:
            return cls(name)
        except ValueError:
            return None


#: Kaapana's Python spellings of the env types and the types they mean.
ENV_TYPE_ALIASES: Dict[str, str] = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
}


class TaskTemplateEnv(BaseEnv):
    """A template's variable: its default value and what a task may do with it.

    ``type`` (any spelling of :class:`EnvType`) and ``adjustable`` (absent:
    true) are pcnode's additions; Kaapana's developer guide recommends them.
    """

    choices: Optional[List[str]] = None
    description: Optional[str] = None
    type: Optional[str] = None
    adjustable: Optional[bool] = None

    def is_adjustable(self) -> bool:
        """Whether a task may override the value."""
        return self.adjustable is None or self.adjustable


class Resources(_Model):
    """Requests and limits, as Kubernetes and Kaapana spell them.

    Each is a mapping of resource name to quantity: ``memory`` (``"2Gi"``),
    ``cpu`` (``"500m"``, ``2``) and ``nvidia.com/gpu`` (a whole number).
    pcnode reads these three and ignores (warns about) any other name.
    A request left unset takes its limit's value.
    """

    limits: Optional[Dict[str, Optional[Quantity]]] = None
    requests: Optional[Dict[str, Optional[Quantity]]] = None


class ScaleRuleType(str, Enum):
    """Which memory value a scale rule raises."""

    limit = "limit"
    request = "request"


class ScaleRuleMode(str, Enum):
    """How the data bound to an input channel is measured."""

    sum = "sum"
    max_file_size = "max_file_size"
    max_item_sum = "max_item_sum"


class ScaleRule(_Model):
    """Raises a memory value to scale_factor × the measured size of an input's data."""

    scale_factor: int
    type: ScaleRuleType
    mode: ScaleRuleMode
    target_dir: Optional[str] = ""
    target_regex: Optional[str] = ".*"
    target_glob: Optional[str] = "*"


class IOBase(_Model):
    """What every channel-related model has: a name and an optional scale rule."""

    name: str
    scale_rule: Optional[ScaleRule] = None


class IOMount(IOBase):
    """An input or output channel: where its data is mounted in the container."""

    mounted_path: str
    description: Optional[str] = None


class BaseTask(_Model):
    """What templates and tasks share: an optional command and resources."""

    command: Optional[List[str]] = None
    resources: Optional[Resources] = None


class TaskTemplate(BaseTask):
    """One use case of a processing-container: env, channels, command, resources."""

    identifier: str
    description: str
    inputs: List[IOMount]
    outputs: List[IOMount]
    env: List[TaskTemplateEnv]

    def problems(self) -> List["Problem"]:
        """Every rule this template breaks, with fields named from the template."""
        from pcnode.kaapana import validate

        return validate.template_problems(self.to_json_dict())

    def env_defaults(self) -> List[BaseEnv]:
        """The template's variables with their default values, in order."""
        return [BaseEnv(name=e.name, value=e.value) for e in self.env]


class ProcessingContainer(_Model):
    """The content of an image's /processing-container.json."""

    name: str
    description: str
    api_version: int = 1
    templates: List[TaskTemplate] = Field(default_factory=list)

    def template(self, identifier: str) -> Optional[TaskTemplate]:
        """Returns the template with the given identifier, or None."""
        for t in self.templates:
            if t.identifier == identifier:
                return t
        return None

    def problems(self) -> List["Problem"]:
        """Every rule this processing-container breaks, as Go reports them."""
        from pcnode.kaapana import validate

        return validate.processing_container_problems(self.to_json_dict())
