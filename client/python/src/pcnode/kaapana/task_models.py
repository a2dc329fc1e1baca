"""Models of a Kaapana task.json, under the names of Kaapana's Task API.

A task names an image and a template (by identifier, or given in full), binds
host directories to the template's channels (``volume_source.host_path``) and
overrides env, command and resources. pcnode runs tasks on a node's own host
paths, so of Kaapana's volume sources only ``host_path`` is read.

The models check only the JSON types of their fields; use
:func:`pcnode.kaapana.load_task` to read a task.json with the Go daemon's rules,
and :func:`pcnode.kaapana.to_task_spec` to turn one into a ``TaskSpec``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Literal, Optional, Union

from pydantic import ConfigDict, Field

from pcnode.kaapana.pc_models import BaseEnv, BaseTask, IOBase, TaskTemplate, TaskTemplateEnv, _Model

if TYPE_CHECKING:
    from pcnode.kaapana.problems import Problem

__all__ = [
    "BaseConfig",
    "DockerConfig",
    "HostPathVolume",
    "IOChannel",
    "IOVolume",
    "K8sConfig",
    "Task",
    "TaskInstance",
]

#: A label value as a task.json may write it; pcnode turns numbers and
#: booleans into their JSON text.
LabelValue = Union[str, int, float, bool]


class HostPathVolume(_Model):
    """A host directory."""

    host_path: str


class IOVolume(IOBase):
    """A task's binding of a host directory to a template channel, by name."""

    volume_source: HostPathVolume


class IOChannel(IOBase):
    """A channel bound to a host directory at its mounted path (a task instance's)."""

    volume_source: HostPathVolume
    mounted_path: str
    description: Optional[str] = None


class BaseConfig(_Model):
    """Runner settings; pcnode uses ``labels`` and ignores the rest."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    labels: Optional[Dict[str, LabelValue]] = Field(default_factory=dict)


class DockerConfig(BaseConfig):
    """Kaapana's Docker runner settings."""

    type: Literal["docker"] = "docker"


class K8sConfig(BaseConfig):
    """Kaapana's Kubernetes runner settings (read, but not used, by pcnode)."""

    type: Literal["k8s"] = "k8s"
    namespace: Optional[str] = None
    registryUrl: Optional[str] = None
    registryUsername: Optional[str] = None
    registryPassword: Optional[str] = None
    imagePullSecrets: Optional[List[str]] = None
    annotations: Dict[str, Any] = Field(default_factory=dict)


class Task(BaseTask):
    """A task.json: one use of a template with host paths, env and overrides."""

    name: str
    image: str
    api_version: int = 1
    taskTemplate: Union[str, TaskTemplate]
    config: Optional[Union[K8sConfig, DockerConfig, BaseConfig]] = Field(default_factory=BaseConfig)
    inputs: List[IOVolume] = Field(default_factory=list)
    outputs: List[IOVolume] = Field(default_factory=list)
    env: Optional[List[BaseEnv]] = Field(default_factory=list)

    def problems(self) -> List["Problem"]:
        """Every rule this task breaks on its own (without its template), as Go reports them."""
        from pcnode.kaapana import validate

        return validate.task_problems(self.to_json_dict())

    def labels(self) -> Dict[str, str]:
        """The task's labels (config.labels) with values as strings."""
        from pcnode.kaapana.convert import label_text

        if self.config is None or not self.config.labels:
            return {}
        return {k: label_text(v) for k, v in self.config.labels.items()}


class TaskInstance(BaseTask):
    """A task merged with its template: what runs."""

    identifier: str
    description: str = ""
    name: str = ""
    image: str
    taskTemplate: Union[str, TaskTemplate] = ""
    inputs: List[IOChannel] = Field(default_factory=list)
    outputs: List[IOChannel] = Field(default_factory=list)
    env: List[TaskTemplateEnv] = Field(default_factory=list)
