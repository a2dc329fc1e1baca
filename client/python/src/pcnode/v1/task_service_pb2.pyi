import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pcnode.v1 import task_pb2 as _task_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitTaskRequest(_message.Message):
    __slots__ = ("spec", "idempotency_key")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    spec: _task_pb2.TaskSpec
    idempotency_key: str
    def __init__(self, spec: _Optional[_Union[_task_pb2.TaskSpec, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SubmitTaskResponse(_message.Message):
    __slots__ = ("task", "existing")
    TASK_FIELD_NUMBER: _ClassVar[int]
    EXISTING_FIELD_NUMBER: _ClassVar[int]
    task: _task_pb2.Task
    existing: bool
    def __init__(self, task: _Optional[_Union[_task_pb2.Task, _Mapping]] = ..., existing: _Optional[bool] = ...) -> None: ...

class RunTaskRequest(_message.Message):
    __slots__ = ("submit", "task_id", "include_logs")
    SUBMIT_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_LOGS_FIELD_NUMBER: _ClassVar[int]
    submit: SubmitTaskRequest
    task_id: str
    include_logs: bool
    def __init__(self, submit: _Optional[_Union[SubmitTaskRequest, _Mapping]] = ..., task_id: _Optional[str] = ..., include_logs: _Optional[bool] = ...) -> None: ...

class RunTaskResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _task_pb2.TaskEvent
    def __init__(self, event: _Optional[_Union[_task_pb2.TaskEvent, _Mapping]] = ...) -> None: ...

class SubmitTasksRequest(_message.Message):
    __slots__ = ("submit",)
    SUBMIT_FIELD_NUMBER: _ClassVar[int]
    submit: SubmitTaskRequest
    def __init__(self, submit: _Optional[_Union[SubmitTaskRequest, _Mapping]] = ...) -> None: ...

class SubmitTasksResponse(_message.Message):
    __slots__ = ("index", "task", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    task: _task_pb2.Task
    error: SubmitError
    def __init__(self, index: _Optional[int] = ..., task: _Optional[_Union[_task_pb2.Task, _Mapping]] = ..., error: _Optional[_Union[SubmitError, _Mapping]] = ...) -> None: ...

class SubmitError(_message.Message):
    __slots__ = ("code", "message", "problems")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    problems: _containers.RepeatedCompositeFieldContainer[_task_pb2.Problem]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., problems: _Optional[_Iterable[_Union[_task_pb2.Problem, _Mapping]]] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _task_pb2.Task
    def __init__(self, task: _Optional[_Union[_task_pb2.Task, _Mapping]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("states", "labels", "page_size", "page_token")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STATES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[_task_pb2.TaskState]
    labels: _containers.ScalarMap[str, str]
    page_size: int
    page_token: str
    def __init__(self, states: _Optional[_Iterable[_Union[_task_pb2.TaskState, str]]] = ..., labels: _Optional[_Mapping[str, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[_task_pb2.Task]
    next_page_token: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[_task_pb2.Task, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelTaskRequest(_message.Message):
    __slots__ = ("task_id", "grace_period")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    grace_period: _duration_pb2.Duration
    def __init__(self, task_id: _Optional[str] = ..., grace_period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CancelTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _task_pb2.Task
    def __init__(self, task: _Optional[_Union[_task_pb2.Task, _Mapping]] = ...) -> None: ...

class DeleteTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class DeleteTaskResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchTasksRequest(_message.Message):
    __slots__ = ("labels", "send_initial", "after_revision")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SEND_INITIAL_FIELD_NUMBER: _ClassVar[int]
    AFTER_REVISION_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.ScalarMap[str, str]
    send_initial: bool
    after_revision: int
    def __init__(self, labels: _Optional[_Mapping[str, str]] = ..., send_initial: _Optional[bool] = ..., after_revision: _Optional[int] = ...) -> None: ...

class WatchTasksResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _task_pb2.TaskEvent
    def __init__(self, event: _Optional[_Union[_task_pb2.TaskEvent, _Mapping]] = ...) -> None: ...

class StreamLogsRequest(_message.Message):
    __slots__ = ("task_id", "follow", "tail_lines", "since", "after_sequence", "stream")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    TAIL_LINES_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    follow: bool
    tail_lines: int
    since: _timestamp_pb2.Timestamp
    after_sequence: int
    stream: _task_pb2.LogStream
    def __init__(self, task_id: _Optional[str] = ..., follow: _Optional[bool] = ..., tail_lines: _Optional[int] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., after_sequence: _Optional[int] = ..., stream: _Optional[_Union[_task_pb2.LogStream, str]] = ...) -> None: ...

class StreamLogsResponse(_message.Message):
    __slots__ = ("entries", "gap")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_task_pb2.LogEntry]
    gap: _task_pb2.LogGap
    def __init__(self, entries: _Optional[_Iterable[_Union[_task_pb2.LogEntry, _Mapping]]] = ..., gap: _Optional[_Union[_task_pb2.LogGap, _Mapping]] = ...) -> None: ...

class GetTaskOutputsRequest(_message.Message):
    __slots__ = ("task_id", "page_size", "page_token")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    page_size: int
    page_token: str
    def __init__(self, task_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetTaskOutputsResponse(_message.Message):
    __slots__ = ("manifests", "next_page_token")
    MANIFESTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    manifests: _containers.RepeatedCompositeFieldContainer[_task_pb2.OutputManifest]
    next_page_token: str
    def __init__(self, manifests: _Optional[_Iterable[_Union[_task_pb2.OutputManifest, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ResolveTaskRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: _task_pb2.TaskSpec
    def __init__(self, spec: _Optional[_Union[_task_pb2.TaskSpec, _Mapping]] = ...) -> None: ...

class ResolveTaskResponse(_message.Message):
    __slots__ = ("instance", "fits_now", "fits_node", "problems", "warnings")
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    FITS_NOW_FIELD_NUMBER: _ClassVar[int]
    FITS_NODE_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    instance: _task_pb2.TaskInstance
    fits_now: bool
    fits_node: bool
    problems: _containers.RepeatedCompositeFieldContainer[_task_pb2.Problem]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, instance: _Optional[_Union[_task_pb2.TaskInstance, _Mapping]] = ..., fits_now: _Optional[bool] = ..., fits_node: _Optional[bool] = ..., problems: _Optional[_Iterable[_Union[_task_pb2.Problem, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...
