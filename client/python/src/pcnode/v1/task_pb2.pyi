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

class NetworkMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NETWORK_MODE_UNSPECIFIED: _ClassVar[NetworkMode]
    NETWORK_MODE_NONE: _ClassVar[NetworkMode]
    NETWORK_MODE_HOST: _ClassVar[NetworkMode]

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATE_UNSPECIFIED: _ClassVar[TaskState]
    TASK_STATE_QUEUED: _ClassVar[TaskState]
    TASK_STATE_PREPARING: _ClassVar[TaskState]
    TASK_STATE_RUNNING: _ClassVar[TaskState]
    TASK_STATE_SUCCEEDED: _ClassVar[TaskState]
    TASK_STATE_FAILED: _ClassVar[TaskState]
    TASK_STATE_CANCELLED: _ClassVar[TaskState]

class TaskReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_REASON_UNSPECIFIED: _ClassVar[TaskReason]
    TASK_REASON_COMPLETED: _ClassVar[TaskReason]
    TASK_REASON_NONZERO_EXIT: _ClassVar[TaskReason]
    TASK_REASON_OOM_KILLED: _ClassVar[TaskReason]
    TASK_REASON_TIMEOUT: _ClassVar[TaskReason]
    TASK_REASON_CANCELLED: _ClassVar[TaskReason]
    TASK_REASON_IMAGE_ERROR: _ClassVar[TaskReason]
    TASK_REASON_START_ERROR: _ClassVar[TaskReason]
    TASK_REASON_LOST: _ClassVar[TaskReason]

class LogStream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_STREAM_UNSPECIFIED: _ClassVar[LogStream]
    LOG_STREAM_STDOUT: _ClassVar[LogStream]
    LOG_STREAM_STDERR: _ClassVar[LogStream]
NETWORK_MODE_UNSPECIFIED: NetworkMode
NETWORK_MODE_NONE: NetworkMode
NETWORK_MODE_HOST: NetworkMode
TASK_STATE_UNSPECIFIED: TaskState
TASK_STATE_QUEUED: TaskState
TASK_STATE_PREPARING: TaskState
TASK_STATE_RUNNING: TaskState
TASK_STATE_SUCCEEDED: TaskState
TASK_STATE_FAILED: TaskState
TASK_STATE_CANCELLED: TaskState
TASK_REASON_UNSPECIFIED: TaskReason
TASK_REASON_COMPLETED: TaskReason
TASK_REASON_NONZERO_EXIT: TaskReason
TASK_REASON_OOM_KILLED: TaskReason
TASK_REASON_TIMEOUT: TaskReason
TASK_REASON_CANCELLED: TaskReason
TASK_REASON_IMAGE_ERROR: TaskReason
TASK_REASON_START_ERROR: TaskReason
TASK_REASON_LOST: TaskReason
LOG_STREAM_UNSPECIFIED: LogStream
LOG_STREAM_STDOUT: LogStream
LOG_STREAM_STDERR: LogStream

class TaskSpec(_message.Message):
    __slots__ = ("name", "image", "template_identifier", "inline_template", "inputs", "outputs", "env", "command", "resources", "labels", "priority", "startup_timeout", "execution_timeout", "stop_grace_period", "preserve_outputs", "network", "registry_auth", "pids_limit", "read_only_rootfs", "user")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    INLINE_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    STARTUP_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    STOP_GRACE_PERIOD_FIELD_NUMBER: _ClassVar[int]
    PRESERVE_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_AUTH_FIELD_NUMBER: _ClassVar[int]
    PIDS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_ROOTFS_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    name: str
    image: str
    template_identifier: str
    inline_template: _template_pb2.TaskTemplate
    inputs: _containers.RepeatedCompositeFieldContainer[ChannelBinding]
    outputs: _containers.RepeatedCompositeFieldContainer[ChannelBinding]
    env: _containers.RepeatedCompositeFieldContainer[EnvVar]
    command: _containers.RepeatedScalarFieldContainer[str]
    resources: _template_pb2.ResourceRequirements
    labels: _containers.ScalarMap[str, str]
    priority: int
    startup_timeout: _duration_pb2.Duration
    execution_timeout: _duration_pb2.Duration
    stop_grace_period: _duration_pb2.Duration
    preserve_outputs: bool
    network: NetworkMode
    registry_auth: RegistryAuth
    pids_limit: int
    read_only_rootfs: bool
    user: str
    def __init__(self, name: _Optional[str] = ..., image: _Optional[str] = ..., template_identifier: _Optional[str] = ..., inline_template: _Optional[_Union[_template_pb2.TaskTemplate, _Mapping]] = ..., inputs: _Optional[_Iterable[_Union[ChannelBinding, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[ChannelBinding, _Mapping]]] = ..., env: _Optional[_Iterable[_Union[EnvVar, _Mapping]]] = ..., command: _Optional[_Iterable[str]] = ..., resources: _Optional[_Union[_template_pb2.ResourceRequirements, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., priority: _Optional[int] = ..., startup_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., execution_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., stop_grace_period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., preserve_outputs: _Optional[bool] = ..., network: _Optional[_Union[NetworkMode, str]] = ..., registry_auth: _Optional[_Union[RegistryAuth, _Mapping]] = ..., pids_limit: _Optional[int] = ..., read_only_rootfs: _Optional[bool] = ..., user: _Optional[str] = ...) -> None: ...

class RegistryAuth(_message.Message):
    __slots__ = ("username", "password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class ChannelBinding(_message.Message):
    __slots__ = ("name", "host_path", "scale_rule")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_PATH_FIELD_NUMBER: _ClassVar[int]
    SCALE_RULE_FIELD_NUMBER: _ClassVar[int]
    name: str
    host_path: str
    scale_rule: _template_pb2.ScaleRule
    def __init__(self, name: _Optional[str] = ..., host_path: _Optional[str] = ..., scale_rule: _Optional[_Union[_template_pb2.ScaleRule, _Mapping]] = ...) -> None: ...

class EnvVar(_message.Message):
    __slots__ = ("name", "value", "secret")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    secret: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., secret: _Optional[str] = ...) -> None: ...

class TaskInstance(_message.Message):
    __slots__ = ("image", "template_identifier", "env", "command", "inputs", "outputs", "resources", "scale_results")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    SCALE_RESULTS_FIELD_NUMBER: _ClassVar[int]
    image: str
    template_identifier: str
    env: _containers.RepeatedCompositeFieldContainer[EnvVar]
    command: _containers.RepeatedScalarFieldContainer[str]
    inputs: _containers.RepeatedCompositeFieldContainer[Mount]
    outputs: _containers.RepeatedCompositeFieldContainer[Mount]
    resources: _template_pb2.ResourceRequirements
    scale_results: _containers.RepeatedCompositeFieldContainer[ScaleResult]
    def __init__(self, image: _Optional[str] = ..., template_identifier: _Optional[str] = ..., env: _Optional[_Iterable[_Union[EnvVar, _Mapping]]] = ..., command: _Optional[_Iterable[str]] = ..., inputs: _Optional[_Iterable[_Union[Mount, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[Mount, _Mapping]]] = ..., resources: _Optional[_Union[_template_pb2.ResourceRequirements, _Mapping]] = ..., scale_results: _Optional[_Iterable[_Union[ScaleResult, _Mapping]]] = ...) -> None: ...

class Mount(_message.Message):
    __slots__ = ("name", "host_path", "mounted_path", "read_only")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_PATH_FIELD_NUMBER: _ClassVar[int]
    MOUNTED_PATH_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    name: str
    host_path: str
    mounted_path: str
    read_only: bool
    def __init__(self, name: _Optional[str] = ..., host_path: _Optional[str] = ..., mounted_path: _Optional[str] = ..., read_only: _Optional[bool] = ...) -> None: ...

class ScaleResult(_message.Message):
    __slots__ = ("channel", "rule", "measured_bytes", "computed_bytes", "applied")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    MEASURED_BYTES_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_BYTES_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    channel: str
    rule: _template_pb2.ScaleRule
    measured_bytes: int
    computed_bytes: int
    applied: bool
    def __init__(self, channel: _Optional[str] = ..., rule: _Optional[_Union[_template_pb2.ScaleRule, _Mapping]] = ..., measured_bytes: _Optional[int] = ..., computed_bytes: _Optional[int] = ..., applied: _Optional[bool] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("id", "spec", "instance", "state", "reason", "message", "exit_code", "idempotency_key", "image_digest", "create_time", "start_time", "finish_time", "allocation", "usage", "outputs", "warnings", "gpu_faults", "update_time", "submitted_by", "registry_auth_in_memory", "stop_request")
    ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    GPU_FAULTS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_BY_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_AUTH_IN_MEMORY_FIELD_NUMBER: _ClassVar[int]
    STOP_REQUEST_FIELD_NUMBER: _ClassVar[int]
    id: str
    spec: TaskSpec
    instance: TaskInstance
    state: TaskState
    reason: TaskReason
    message: str
    exit_code: int
    idempotency_key: str
    image_digest: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    finish_time: _timestamp_pb2.Timestamp
    allocation: Allocation
    usage: Usage
    outputs: _containers.RepeatedCompositeFieldContainer[OutputSummary]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    gpu_faults: _containers.RepeatedCompositeFieldContainer[GpuFault]
    update_time: _timestamp_pb2.Timestamp
    submitted_by: str
    registry_auth_in_memory: bool
    stop_request: StopRequest
    def __init__(self, id: _Optional[str] = ..., spec: _Optional[_Union[TaskSpec, _Mapping]] = ..., instance: _Optional[_Union[TaskInstance, _Mapping]] = ..., state: _Optional[_Union[TaskState, str]] = ..., reason: _Optional[_Union[TaskReason, str]] = ..., message: _Optional[str] = ..., exit_code: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., image_digest: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., allocation: _Optional[_Union[Allocation, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., outputs: _Optional[_Iterable[_Union[OutputSummary, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ..., gpu_faults: _Optional[_Iterable[_Union[GpuFault, _Mapping]]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., submitted_by: _Optional[str] = ..., registry_auth_in_memory: _Optional[bool] = ..., stop_request: _Optional[_Union[StopRequest, _Mapping]] = ...) -> None: ...

class StopRequest(_message.Message):
    __slots__ = ("reason", "request_time", "grace_period", "kill_time")
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TIME_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_FIELD_NUMBER: _ClassVar[int]
    KILL_TIME_FIELD_NUMBER: _ClassVar[int]
    reason: TaskReason
    request_time: _timestamp_pb2.Timestamp
    grace_period: _duration_pb2.Duration
    kill_time: _timestamp_pb2.Timestamp
    def __init__(self, reason: _Optional[_Union[TaskReason, str]] = ..., request_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., grace_period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., kill_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Allocation(_message.Message):
    __slots__ = ("memory_bytes", "cpu_millis", "gpus")
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLIS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    memory_bytes: int
    cpu_millis: int
    gpus: _containers.RepeatedCompositeFieldContainer[GpuAssignment]
    def __init__(self, memory_bytes: _Optional[int] = ..., cpu_millis: _Optional[int] = ..., gpus: _Optional[_Iterable[_Union[GpuAssignment, _Mapping]]] = ...) -> None: ...

class GpuAssignment(_message.Message):
    __slots__ = ("index", "uuid")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    index: int
    uuid: str
    def __init__(self, index: _Optional[int] = ..., uuid: _Optional[str] = ...) -> None: ...

class GpuFault(_message.Message):
    __slots__ = ("uuid", "xid", "message", "time")
    UUID_FIELD_NUMBER: _ClassVar[int]
    XID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    xid: int
    message: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, uuid: _Optional[str] = ..., xid: _Optional[int] = ..., message: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("peak_memory_bytes", "cpu_time", "peak_gpu_memory_bytes")
    PEAK_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_TIME_FIELD_NUMBER: _ClassVar[int]
    PEAK_GPU_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    peak_memory_bytes: int
    cpu_time: _duration_pb2.Duration
    peak_gpu_memory_bytes: int
    def __init__(self, peak_memory_bytes: _Optional[int] = ..., cpu_time: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., peak_gpu_memory_bytes: _Optional[int] = ...) -> None: ...

class OutputSummary(_message.Message):
    __slots__ = ("name", "file_count", "total_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    file_count: int
    total_bytes: int
    def __init__(self, name: _Optional[str] = ..., file_count: _Optional[int] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class OutputManifest(_message.Message):
    __slots__ = ("name", "host_path", "files", "file_count", "total_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_PATH_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    host_path: str
    files: _containers.RepeatedCompositeFieldContainer[OutputFile]
    file_count: int
    total_bytes: int
    def __init__(self, name: _Optional[str] = ..., host_path: _Optional[str] = ..., files: _Optional[_Iterable[_Union[OutputFile, _Mapping]]] = ..., file_count: _Optional[int] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class OutputFile(_message.Message):
    __slots__ = ("path", "size_bytes", "sha256")
    PATH_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    path: str
    size_bytes: int
    sha256: str
    def __init__(self, path: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ("sequence", "time", "stream", "data")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    stream: LogStream
    data: bytes
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stream: _Optional[_Union[LogStream, str]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ImageProgress(_message.Message):
    __slots__ = ("reference", "status", "done_bytes", "total_bytes")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DONE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    reference: str
    status: str
    done_bytes: int
    total_bytes: int
    def __init__(self, reference: _Optional[str] = ..., status: _Optional[str] = ..., done_bytes: _Optional[int] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("task_id", "time", "state_change", "image_progress", "log", "usage", "output_manifest", "log_gap", "revision")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MANIFEST_FIELD_NUMBER: _ClassVar[int]
    LOG_GAP_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    time: _timestamp_pb2.Timestamp
    state_change: Task
    image_progress: ImageProgress
    log: LogEntry
    usage: Usage
    output_manifest: OutputManifest
    log_gap: LogGap
    revision: int
    def __init__(self, task_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state_change: _Optional[_Union[Task, _Mapping]] = ..., image_progress: _Optional[_Union[ImageProgress, _Mapping]] = ..., log: _Optional[_Union[LogEntry, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., output_manifest: _Optional[_Union[OutputManifest, _Mapping]] = ..., log_gap: _Optional[_Union[LogGap, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class LogGap(_message.Message):
    __slots__ = ("first_missed_sequence", "last_missed_sequence")
    FIRST_MISSED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_MISSED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    first_missed_sequence: int
    last_missed_sequence: int
    def __init__(self, first_missed_sequence: _Optional[int] = ..., last_missed_sequence: _Optional[int] = ...) -> None: ...

class Problem(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...
