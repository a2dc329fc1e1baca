from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EnvVarType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENV_VAR_TYPE_UNSPECIFIED: _ClassVar[EnvVarType]
    ENV_VAR_TYPE_STRING: _ClassVar[EnvVarType]
    ENV_VAR_TYPE_INTEGER: _ClassVar[EnvVarType]
    ENV_VAR_TYPE_NUMBER: _ClassVar[EnvVarType]
    ENV_VAR_TYPE_BOOLEAN: _ClassVar[EnvVarType]

class ScaleRuleMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCALE_RULE_MODE_UNSPECIFIED: _ClassVar[ScaleRuleMode]
    SCALE_RULE_MODE_SUM: _ClassVar[ScaleRuleMode]
    SCALE_RULE_MODE_MAX_FILE_SIZE: _ClassVar[ScaleRuleMode]
    SCALE_RULE_MODE_MAX_ITEM_SUM: _ClassVar[ScaleRuleMode]

class ScaleRuleType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCALE_RULE_TYPE_UNSPECIFIED: _ClassVar[ScaleRuleType]
    SCALE_RULE_TYPE_LIMIT: _ClassVar[ScaleRuleType]
    SCALE_RULE_TYPE_REQUEST: _ClassVar[ScaleRuleType]
ENV_VAR_TYPE_UNSPECIFIED: EnvVarType
ENV_VAR_TYPE_STRING: EnvVarType
ENV_VAR_TYPE_INTEGER: EnvVarType
ENV_VAR_TYPE_NUMBER: EnvVarType
ENV_VAR_TYPE_BOOLEAN: EnvVarType
SCALE_RULE_MODE_UNSPECIFIED: ScaleRuleMode
SCALE_RULE_MODE_SUM: ScaleRuleMode
SCALE_RULE_MODE_MAX_FILE_SIZE: ScaleRuleMode
SCALE_RULE_MODE_MAX_ITEM_SUM: ScaleRuleMode
SCALE_RULE_TYPE_UNSPECIFIED: ScaleRuleType
SCALE_RULE_TYPE_LIMIT: ScaleRuleType
SCALE_RULE_TYPE_REQUEST: ScaleRuleType

class ProcessingContainer(_message.Message):
    __slots__ = ("name", "description", "api_version", "templates")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    api_version: int
    templates: _containers.RepeatedCompositeFieldContainer[TaskTemplate]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., api_version: _Optional[int] = ..., templates: _Optional[_Iterable[_Union[TaskTemplate, _Mapping]]] = ...) -> None: ...

class TaskTemplate(_message.Message):
    __slots__ = ("identifier", "description", "env", "inputs", "outputs", "command", "resources")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    description: str
    env: _containers.RepeatedCompositeFieldContainer[EnvVarTemplate]
    inputs: _containers.RepeatedCompositeFieldContainer[ChannelTemplate]
    outputs: _containers.RepeatedCompositeFieldContainer[ChannelTemplate]
    command: _containers.RepeatedScalarFieldContainer[str]
    resources: ResourceRequirements
    def __init__(self, identifier: _Optional[str] = ..., description: _Optional[str] = ..., env: _Optional[_Iterable[_Union[EnvVarTemplate, _Mapping]]] = ..., inputs: _Optional[_Iterable[_Union[ChannelTemplate, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[ChannelTemplate, _Mapping]]] = ..., command: _Optional[_Iterable[str]] = ..., resources: _Optional[_Union[ResourceRequirements, _Mapping]] = ...) -> None: ...

class EnvVarTemplate(_message.Message):
    __slots__ = ("name", "value", "description", "type", "choices", "adjustable")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    ADJUSTABLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    description: str
    type: EnvVarType
    choices: _containers.RepeatedScalarFieldContainer[str]
    adjustable: bool
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., description: _Optional[str] = ..., type: _Optional[_Union[EnvVarType, str]] = ..., choices: _Optional[_Iterable[str]] = ..., adjustable: _Optional[bool] = ...) -> None: ...

class ChannelTemplate(_message.Message):
    __slots__ = ("name", "mounted_path", "description", "scale_rule")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MOUNTED_PATH_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SCALE_RULE_FIELD_NUMBER: _ClassVar[int]
    name: str
    mounted_path: str
    description: str
    scale_rule: ScaleRule
    def __init__(self, name: _Optional[str] = ..., mounted_path: _Optional[str] = ..., description: _Optional[str] = ..., scale_rule: _Optional[_Union[ScaleRule, _Mapping]] = ...) -> None: ...

class ScaleRule(_message.Message):
    __slots__ = ("scale_factor", "type", "mode", "target_dir", "target_regex", "target_glob")
    SCALE_FACTOR_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    TARGET_DIR_FIELD_NUMBER: _ClassVar[int]
    TARGET_REGEX_FIELD_NUMBER: _ClassVar[int]
    TARGET_GLOB_FIELD_NUMBER: _ClassVar[int]
    scale_factor: int
    type: ScaleRuleType
    mode: ScaleRuleMode
    target_dir: str
    target_regex: str
    target_glob: str
    def __init__(self, scale_factor: _Optional[int] = ..., type: _Optional[_Union[ScaleRuleType, str]] = ..., mode: _Optional[_Union[ScaleRuleMode, str]] = ..., target_dir: _Optional[str] = ..., target_regex: _Optional[str] = ..., target_glob: _Optional[str] = ...) -> None: ...

class ResourceList(_message.Message):
    __slots__ = ("memory_bytes", "cpu_millis", "gpus")
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLIS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    memory_bytes: int
    cpu_millis: int
    gpus: int
    def __init__(self, memory_bytes: _Optional[int] = ..., cpu_millis: _Optional[int] = ..., gpus: _Optional[int] = ...) -> None: ...

class ResourceRequirements(_message.Message):
    __slots__ = ("requests", "limits", "gpu_selector")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    GPU_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    requests: ResourceList
    limits: ResourceList
    gpu_selector: GpuSelector
    def __init__(self, requests: _Optional[_Union[ResourceList, _Mapping]] = ..., limits: _Optional[_Union[ResourceList, _Mapping]] = ..., gpu_selector: _Optional[_Union[GpuSelector, _Mapping]] = ...) -> None: ...

class GpuSelector(_message.Message):
    __slots__ = ("min_memory_bytes", "model")
    MIN_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    min_memory_bytes: int
    model: str
    def __init__(self, min_memory_bytes: _Optional[int] = ..., model: _Optional[str] = ...) -> None: ...
