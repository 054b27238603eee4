from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CheckRequest(_message.Message):
    __slots__ = ("api_key", "client_ip", "method", "route", "models", "object_ids", "request_id")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_IP_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    api_key: str
    client_ip: str
    method: str
    route: str
    models: _containers.RepeatedScalarFieldContainer[str]
    object_ids: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    def __init__(self, api_key: _Optional[str] = ..., client_ip: _Optional[str] = ..., method: _Optional[str] = ..., route: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., object_ids: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ("allowed", "denial", "principal", "upstream")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    DENIAL_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    denial: Denial
    principal: Principal
    upstream: Upstream
    def __init__(self, allowed: _Optional[bool] = ..., denial: _Optional[_Union[Denial, _Mapping]] = ..., principal: _Optional[_Union[Principal, _Mapping]] = ..., upstream: _Optional[_Union[Upstream, _Mapping]] = ...) -> None: ...

class Denial(_message.Message):
    __slots__ = ("http_status", "type", "code", "message", "param")
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PARAM_FIELD_NUMBER: _ClassVar[int]
    http_status: int
    type: str
    code: str
    message: str
    param: str
    def __init__(self, http_status: _Optional[int] = ..., type: _Optional[str] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., param: _Optional[str] = ...) -> None: ...

class Principal(_message.Message):
    __slots__ = ("org_id", "key_id", "key_display_prefix")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_DISPLAY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    key_id: str
    key_display_prefix: str
    def __init__(self, org_id: _Optional[str] = ..., key_id: _Optional[str] = ..., key_display_prefix: _Optional[str] = ...) -> None: ...

class Upstream(_message.Message):
    __slots__ = ("base_url", "api_key", "provider")
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    base_url: str
    api_key: str
    provider: str
    def __init__(self, base_url: _Optional[str] = ..., api_key: _Optional[str] = ..., provider: _Optional[str] = ...) -> None: ...
