import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pcnode.v1 import task_pb2 as _task_pb2
from pcnode.v1 import template_pb2 as _template_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ArchiveFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ARCHIVE_FORMAT_UNSPECIFIED: _ClassVar[ArchiveFormat]
    ARCHIVE_FORMAT_OCI: _ClassVar[ArchiveFormat]
    ARCHIVE_FORMAT_DOCKER: _ClassVar[ArchiveFormat]
ARCHIVE_FORMAT_UNSPECIFIED: ArchiveFormat
ARCHIVE_FORMAT_OCI: ArchiveFormat
ARCHIVE_FORMAT_DOCKER: ArchiveFormat

class Image(_message.Message):
    __slots__ = ("name", "digest", "size_bytes", "create_time", "used_by_task_ids")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    USED_BY_TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: str
    size_bytes: int
    create_time: _timestamp_pb2.Timestamp
    used_by_task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[str] = ..., size_bytes: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., used_by_task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class PullImageRequest(_message.Message):
    __slots__ = ("reference", "auth")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    reference: str
    auth: _task_pb2.RegistryAuth
    def __init__(self, reference: _Optional[str] = ..., auth: _Optional[_Union[_task_pb2.RegistryAuth, _Mapping]] = ...) -> None: ...

class PullImageResponse(_message.Message):
    __slots__ = ("progress", "image")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    progress: _task_pb2.ImageProgress
    image: Image
    def __init__(self, progress: _Optional[_Union[_task_pb2.ImageProgress, _Mapping]] = ..., image: _Optional[_Union[Image, _Mapping]] = ...) -> None: ...

class ImportImageMetadata(_message.Message):
    __slots__ = ("format", "reference", "size_bytes")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    format: ArchiveFormat
    reference: str
    size_bytes: int
    def __init__(self, format: _Optional[_Union[ArchiveFormat, str]] = ..., reference: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class ImportImageRequest(_message.Message):
    __slots__ = ("metadata", "chunk")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    metadata: ImportImageMetadata
    chunk: bytes
    def __init__(self, metadata: _Optional[_Union[ImportImageMetadata, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class ImportImageResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ...) -> None: ...

class ListImagesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListImagesResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ...) -> None: ...

class RemoveImageRequest(_message.Message):
    __slots__ = ("reference",)
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    def __init__(self, reference: _Optional[str] = ...) -> None: ...

class RemoveImageResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetProcessingContainerRequest(_message.Message):
    __slots__ = ("reference",)
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    def __init__(self, reference: _Optional[str] = ...) -> None: ...

class GetProcessingContainerResponse(_message.Message):
    __slots__ = ("digest", "processing_container", "warnings")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_CONTAINER_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    digest: str
    processing_container: _template_pb2.ProcessingContainer
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, digest: _Optional[str] = ..., processing_container: _Optional[_Union[_template_pb2.ProcessingContainer, _Mapping]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...
