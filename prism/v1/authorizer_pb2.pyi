from prism.v1 import request_logging_pb2 as _request_logging_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ObjectKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OBJECT_KIND_UNSPECIFIED: _ClassVar[ObjectKind]
    OBJECT_KIND_ASSISTANT: _ClassVar[ObjectKind]
    OBJECT_KIND_THREAD: _ClassVar[ObjectKind]
    OBJECT_KIND_MESSAGE: _ClassVar[ObjectKind]
    OBJECT_KIND_RUN: _ClassVar[ObjectKind]
    OBJECT_KIND_FILE: _ClassVar[ObjectKind]
    OBJECT_KIND_VECTOR_STORE: _ClassVar[ObjectKind]
    OBJECT_KIND_VECTOR_STORE_FILE_BATCH: _ClassVar[ObjectKind]
OBJECT_KIND_UNSPECIFIED: ObjectKind
OBJECT_KIND_ASSISTANT: ObjectKind
OBJECT_KIND_THREAD: ObjectKind
OBJECT_KIND_MESSAGE: ObjectKind
OBJECT_KIND_RUN: ObjectKind
OBJECT_KIND_FILE: ObjectKind
OBJECT_KIND_VECTOR_STORE: ObjectKind
OBJECT_KIND_VECTOR_STORE_FILE_BATCH: ObjectKind

class CheckRequest(_message.Message):
    __slots__ = ("api_key", "client_ip", "method", "route", "models", "request_id", "objects", "model_object_id", "uses_model", "max_prompt_tokens", "max_completion_tokens")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_IP_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    USES_MODEL_FIELD_NUMBER: _ClassVar[int]
    MAX_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    api_key: str
    client_ip: str
    method: str
    route: str
    models: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    objects: _containers.RepeatedCompositeFieldContainer[ObjectRef]
    model_object_id: str
    uses_model: bool
    max_prompt_tokens: int
    max_completion_tokens: int
    def __init__(self, api_key: _Optional[str] = ..., client_ip: _Optional[str] = ..., method: _Optional[str] = ..., route: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ..., objects: _Optional[_Iterable[_Union[ObjectRef, _Mapping]]] = ..., model_object_id: _Optional[str] = ..., uses_model: _Optional[bool] = ..., max_prompt_tokens: _Optional[int] = ..., max_completion_tokens: _Optional[int] = ...) -> None: ...

class ObjectRef(_message.Message):
    __slots__ = ("id", "kind", "param")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARAM_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: ObjectKind
    param: str
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[ObjectKind, str]] = ..., param: _Optional[str] = ...) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ("allowed", "denial", "principal", "upstream", "requests", "tokens", "shadow_exceeded", "record_wanted", "slot_lease_ms", "request_logging", "grant")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    DENIAL_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_EXCEEDED_FIELD_NUMBER: _ClassVar[int]
    RECORD_WANTED_FIELD_NUMBER: _ClassVar[int]
    SLOT_LEASE_MS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_LOGGING_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    denial: Denial
    principal: Principal
    upstream: Upstream
    requests: RateLimitStatus
    tokens: RateLimitStatus
    shadow_exceeded: _containers.RepeatedScalarFieldContainer[str]
    record_wanted: bool
    slot_lease_ms: int
    request_logging: _request_logging_pb2.RequestLogging
    grant: str
    def __init__(self, allowed: _Optional[bool] = ..., denial: _Optional[_Union[Denial, _Mapping]] = ..., principal: _Optional[_Union[Principal, _Mapping]] = ..., upstream: _Optional[_Union[Upstream, _Mapping]] = ..., requests: _Optional[_Union[RateLimitStatus, _Mapping]] = ..., tokens: _Optional[_Union[RateLimitStatus, _Mapping]] = ..., shadow_exceeded: _Optional[_Iterable[str]] = ..., record_wanted: _Optional[bool] = ..., slot_lease_ms: _Optional[int] = ..., request_logging: _Optional[_Union[_request_logging_pb2.RequestLogging, _Mapping]] = ..., grant: _Optional[str] = ...) -> None: ...

class RateLimitStatus(_message.Message):
    __slots__ = ("limit", "remaining", "reset_ms")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    RESET_MS_FIELD_NUMBER: _ClassVar[int]
    limit: int
    remaining: int
    reset_ms: int
    def __init__(self, limit: _Optional[int] = ..., remaining: _Optional[int] = ..., reset_ms: _Optional[int] = ...) -> None: ...

class Denial(_message.Message):
    __slots__ = ("http_status", "type", "code", "message", "param", "retry_after_ms", "do_not_retry", "rule")
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PARAM_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    DO_NOT_RETRY_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    http_status: int
    type: str
    code: str
    message: str
    param: str
    retry_after_ms: int
    do_not_retry: bool
    rule: str
    def __init__(self, http_status: _Optional[int] = ..., type: _Optional[str] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., param: _Optional[str] = ..., retry_after_ms: _Optional[int] = ..., do_not_retry: _Optional[bool] = ..., rule: _Optional[str] = ...) -> None: ...

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

class RecordRequest(_message.Message):
    __slots__ = ("grant", "objects", "deleted_ids", "runs", "finished", "steps", "sequence")
    GRANT_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    DELETED_IDS_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    grant: str
    objects: _containers.RepeatedCompositeFieldContainer[OwnedObject]
    deleted_ids: _containers.RepeatedScalarFieldContainer[str]
    runs: _containers.RepeatedCompositeFieldContainer[RunUsage]
    finished: bool
    steps: _containers.RepeatedCompositeFieldContainer[StepToolCalls]
    sequence: int
    def __init__(self, grant: _Optional[str] = ..., objects: _Optional[_Iterable[_Union[OwnedObject, _Mapping]]] = ..., deleted_ids: _Optional[_Iterable[str]] = ..., runs: _Optional[_Iterable[_Union[RunUsage, _Mapping]]] = ..., finished: _Optional[bool] = ..., steps: _Optional[_Iterable[_Union[StepToolCalls, _Mapping]]] = ..., sequence: _Optional[int] = ...) -> None: ...

class OwnedObject(_message.Message):
    __slots__ = ("id", "kind", "model", "thread_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: ObjectKind
    model: str
    thread_id: str
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[ObjectKind, str]] = ..., model: _Optional[str] = ..., thread_id: _Optional[str] = ...) -> None: ...

class RunUsage(_message.Message):
    __slots__ = ("run_id", "total_tokens", "thread_id", "model", "prompt_tokens", "completion_tokens", "cached_tokens")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    total_tokens: int
    thread_id: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    def __init__(self, run_id: _Optional[str] = ..., total_tokens: _Optional[int] = ..., thread_id: _Optional[str] = ..., model: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cached_tokens: _Optional[int] = ...) -> None: ...

class StepToolCalls(_message.Message):
    __slots__ = ("step_id", "run_id", "thread_id", "file_search_calls", "code_interpreter_calls")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_SEARCH_CALLS_FIELD_NUMBER: _ClassVar[int]
    CODE_INTERPRETER_CALLS_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    run_id: str
    thread_id: str
    file_search_calls: int
    code_interpreter_calls: int
    def __init__(self, step_id: _Optional[str] = ..., run_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., file_search_calls: _Optional[int] = ..., code_interpreter_calls: _Optional[int] = ...) -> None: ...

class RecordResponse(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[RunCharge]
    def __init__(self, runs: _Optional[_Iterable[_Union[RunCharge, _Mapping]]] = ...) -> None: ...

class RunCharge(_message.Message):
    __slots__ = ("run_id", "model", "cost_micros", "priced", "prompt_tokens", "cached_tokens", "completion_tokens")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    PRICED_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    model: str
    cost_micros: int
    priced: bool
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    def __init__(self, run_id: _Optional[str] = ..., model: _Optional[str] = ..., cost_micros: _Optional[int] = ..., priced: _Optional[bool] = ..., prompt_tokens: _Optional[int] = ..., cached_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...

class FilterOwnedRequest(_message.Message):
    __slots__ = ("ids", "grant")
    IDS_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    grant: str
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., grant: _Optional[str] = ...) -> None: ...

class FilterOwnedResponse(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RenewRequest(_message.Message):
    __slots__ = ("grants",)
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    grants: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, grants: _Optional[_Iterable[str]] = ...) -> None: ...

class RenewResponse(_message.Message):
    __slots__ = ("renewed",)
    RENEWED_FIELD_NUMBER: _ClassVar[int]
    renewed: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, renewed: _Optional[_Iterable[bool]] = ...) -> None: ...
