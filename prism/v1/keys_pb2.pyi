from prism.v1 import authorizer_pb2 as _authorizer_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ValidateKeyRequest(_message.Message):
    __slots__ = ("api_key", "client_ip", "model", "route")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_IP_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    api_key: str
    client_ip: str
    model: str
    route: str
    def __init__(self, api_key: _Optional[str] = ..., client_ip: _Optional[str] = ..., model: _Optional[str] = ..., route: _Optional[str] = ...) -> None: ...

class ValidateKeyResponse(_message.Message):
    __slots__ = ("valid", "principal", "allowed", "denial")
    VALID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    DENIAL_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    principal: KeyPrincipal
    allowed: bool
    denial: _authorizer_pb2.Denial
    def __init__(self, valid: _Optional[bool] = ..., principal: _Optional[_Union[KeyPrincipal, _Mapping]] = ..., allowed: _Optional[bool] = ..., denial: _Optional[_Union[_authorizer_pb2.Denial, _Mapping]] = ...) -> None: ...

class KeyPrincipal(_message.Message):
    __slots__ = ("org_id", "key_id", "key_display_prefix", "name", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_DISPLAY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    key_id: str
    key_display_prefix: str
    name: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, org_id: _Optional[str] = ..., key_id: _Optional[str] = ..., key_display_prefix: _Optional[str] = ..., name: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...
