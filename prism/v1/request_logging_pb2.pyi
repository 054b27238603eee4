from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BodyLogging(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BODY_LOGGING_NONE: _ClassVar[BodyLogging]
    BODY_LOGGING_METADATA: _ClassVar[BodyLogging]
    BODY_LOGGING_FULL: _ClassVar[BodyLogging]
BODY_LOGGING_NONE: BodyLogging
BODY_LOGGING_METADATA: BodyLogging
BODY_LOGGING_FULL: BodyLogging

class RequestLogging(_message.Message):
    __slots__ = ("bodies", "max_body_bytes")
    BODIES_FIELD_NUMBER: _ClassVar[int]
    MAX_BODY_BYTES_FIELD_NUMBER: _ClassVar[int]
    bodies: BodyLogging
    max_body_bytes: int
    def __init__(self, bodies: _Optional[_Union[BodyLogging, str]] = ..., max_body_bytes: _Optional[int] = ...) -> None: ...
