import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pcnode.v1 import template_pb2 as _template_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeConditionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_CONDITION_TYPE_UNSPECIFIED: _ClassVar[NodeConditionType]
    NODE_CONDITION_TYPE_CONTAINERD_READY: _ClassVar[NodeConditionType]
    NODE_CONDITION_TYPE_GPUS_KNOWN: _ClassVar[NodeConditionType]

class GpuHealth(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GPU_HEALTH_UNSPECIFIED: _ClassVar[GpuHealth]
    GPU_HEALTH_HEALTHY: _ClassVar[GpuHealth]
    GPU_HEALTH_UNHEALTHY: _ClassVar[GpuHealth]

class NodeChange(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_CHANGE_UNSPECIFIED: _ClassVar[NodeChange]
    NODE_CHANGE_INITIAL: _ClassVar[NodeChange]
    NODE_CHANGE_HEARTBEAT: _ClassVar[NodeChange]
    NODE_CHANGE_GPU_HEALTH: _ClassVar[NodeChange]
    NODE_CHANGE_ALLOCATION: _ClassVar[NodeChange]
    NODE_CHANGE_CAPACITY: _ClassVar[NodeChange]
    NODE_CHANGE_DRAIN: _ClassVar[NodeChange]
    NODE_CHANGE_CONDITION: _ClassVar[NodeChange]
NODE_CONDITION_TYPE_UNSPECIFIED: NodeConditionType
NODE_CONDITION_TYPE_CONTAINERD_READY: NodeConditionType
NODE_CONDITION_TYPE_GPUS_KNOWN: NodeConditionType
GPU_HEALTH_UNSPECIFIED: GpuHealth
GPU_HEALTH_HEALTHY: GpuHealth
GPU_HEALTH_UNHEALTHY: GpuHealth
NODE_CHANGE_UNSPECIFIED: NodeChange
NODE_CHANGE_INITIAL: NodeChange
NODE_CHANGE_HEARTBEAT: NodeChange
NODE_CHANGE_GPU_HEALTH: NodeChange
NODE_CHANGE_ALLOCATION: NodeChange
NODE_CHANGE_CAPACITY: NodeChange
NODE_CHANGE_DRAIN: NodeChange
NODE_CHANGE_CONDITION: NodeChange

class Node(_message.Message):
    __slots__ = ("name", "labels", "version", "containerd_version", "driver_version", "cuda_version", "gpu_backend", "capacity", "allocatable", "allocated", "gpus", "draining", "queued_tasks", "running_tasks", "start_time", "conditions")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTAINERD_VERSION_FIELD_NUMBER: _ClassVar[int]
    DRIVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    CUDA_VERSION_FIELD_NUMBER: _ClassVar[int]
    GPU_BACKEND_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    ALLOCATABLE_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    QUEUED_TASKS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_TASKS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    labels: _containers.ScalarMap[str, str]
    version: str
    containerd_version: str
    driver_version: str
    cuda_version: str
    gpu_backend: str
    capacity: _template_pb2.ResourceList
    allocatable: _template_pb2.ResourceList
    allocated: _template_pb2.ResourceList
    gpus: _containers.RepeatedCompositeFieldContainer[Gpu]
    draining: bool
    queued_tasks: int
    running_tasks: int
    start_time: _timestamp_pb2.Timestamp
    conditions: _containers.RepeatedCompositeFieldContainer[NodeCondition]
    def __init__(self, name: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., version: _Optional[str] = ..., containerd_version: _Optional[str] = ..., driver_version: _Optional[str] = ..., cuda_version: _Optional[str] = ..., gpu_backend: _Optional[str] = ..., capacity: _Optional[_Union[_template_pb2.ResourceList, _Mapping]] = ..., allocatable: _Optional[_Union[_template_pb2.ResourceList, _Mapping]] = ..., allocated: _Optional[_Union[_template_pb2.ResourceList, _Mapping]] = ..., gpus: _Optional[_Iterable[_Union[Gpu, _Mapping]]] = ..., draining: _Optional[bool] = ..., queued_tasks: _Optional[int] = ..., running_tasks: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., conditions: _Optional[_Iterable[_Union[NodeCondition, _Mapping]]] = ...) -> None: ...

class NodeCondition(_message.Message):
    __slots__ = ("type", "ok", "message", "since")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    type: NodeConditionType
    ok: bool
    message: str
    since: _timestamp_pb2.Timestamp
    def __init__(self, type: _Optional[_Union[NodeConditionType, str]] = ..., ok: _Optional[bool] = ..., message: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Gpu(_message.Message):
    __slots__ = ("index", "uuid", "model", "pci_bus_id", "numa_node", "memory_total_bytes", "memory_used_bytes", "compute_capability", "mig_enabled", "power_draw_milliwatts", "power_limit_milliwatts", "temperature_celsius", "utilization_percent", "ecc_single_bit_errors", "ecc_double_bit_errors", "health", "health_message", "last_xid", "holder_task_id")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PCI_BUS_ID_FIELD_NUMBER: _ClassVar[int]
    NUMA_NODE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    MIG_ENABLED_FIELD_NUMBER: _ClassVar[int]
    POWER_DRAW_MILLIWATTS_FIELD_NUMBER: _ClassVar[int]
    POWER_LIMIT_MILLIWATTS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_CELSIUS_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_PERCENT_FIELD_NUMBER: _ClassVar[int]
    ECC_SINGLE_BIT_ERRORS_FIELD_NUMBER: _ClassVar[int]
    ECC_DOUBLE_BIT_ERRORS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    HEALTH_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_XID_FIELD_NUMBER: _ClassVar[int]
    HOLDER_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    index: int
    uuid: str
    model: str
    pci_bus_id: str
    numa_node: int
    memory_total_bytes: int
    memory_used_bytes: int
    compute_capability: str
    mig_enabled: bool
    power_draw_milliwatts: int
    power_limit_milliwatts: int
    temperature_celsius: int
    utilization_percent: int
    ecc_single_bit_errors: int
    ecc_double_bit_errors: int
    health: GpuHealth
    health_message: str
    last_xid: Xid
    holder_task_id: str
    def __init__(self, index: _Optional[int] = ..., uuid: _Optional[str] = ..., model: _Optional[str] = ..., pci_bus_id: _Optional[str] = ..., numa_node: _Optional[int] = ..., memory_total_bytes: _Optional[int] = ..., memory_used_bytes: _Optional[int] = ..., compute_capability: _Optional[str] = ..., mig_enabled: _Optional[bool] = ..., power_draw_milliwatts: _Optional[int] = ..., power_limit_milliwatts: _Optional[int] = ..., temperature_celsius: _Optional[int] = ..., utilization_percent: _Optional[int] = ..., ecc_single_bit_errors: _Optional[int] = ..., ecc_double_bit_errors: _Optional[int] = ..., health: _Optional[_Union[GpuHealth, str]] = ..., health_message: _Optional[str] = ..., last_xid: _Optional[_Union[Xid, _Mapping]] = ..., holder_task_id: _Optional[str] = ...) -> None: ...

class Xid(_message.Message):
    __slots__ = ("code", "time", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    time: _timestamp_pb2.Timestamp
    message: str
    def __init__(self, code: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class GetNodeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetNodeResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: Node
    def __init__(self, node: _Optional[_Union[Node, _Mapping]] = ...) -> None: ...

class WatchNodeRequest(_message.Message):
    __slots__ = ("heartbeat_interval",)
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    heartbeat_interval: _duration_pb2.Duration
    def __init__(self, heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class WatchNodeResponse(_message.Message):
    __slots__ = ("change", "node", "time")
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    change: NodeChange
    node: Node
    time: _timestamp_pb2.Timestamp
    def __init__(self, change: _Optional[_Union[NodeChange, str]] = ..., node: _Optional[_Union[Node, _Mapping]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DrainNodeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DrainNodeResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: Node
    def __init__(self, node: _Optional[_Union[Node, _Mapping]] = ...) -> None: ...

class ResumeNodeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResumeNodeResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: Node
    def __init__(self, node: _Optional[_Union[Node, _Mapping]] = ...) -> None: ...

class ClearGpuHealthRequest(_message.Message):
    __slots__ = ("uuid",)
    UUID_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    def __init__(self, uuid: _Optional[str] = ...) -> None: ...

class ClearGpuHealthResponse(_message.Message):
    __slots__ = ("gpu",)
    GPU_FIELD_NUMBER: _ClassVar[int]
    gpu: Gpu
    def __init__(self, gpu: _Optional[_Union[Gpu, _Mapping]] = ...) -> None: ...
