"""THE operation table: the 44 operations of the Assistants API, once, for every part of
Prism that speaks it. The gateway's routes (dataplane/routes.py) and the engine's handlers
(engine/api/) are registered from it; tests/test_operation_table.py holds it to the vendored
OpenAPI spec (spec/).

Each entry is data: the HTTP method, the path template as OpenAI documents it (prefixed with
`/v1`), the spec's operationId, what kind of body it takes, which top-level JSON fields name
a model, whether it starts or resumes a run or other model work, and what a successful
response creates, modifies or deletes.

The object a request must own is the path's first parameter (`thread_id` in
`/v1/threads/{thread_id}/runs/{run_id}`), of the kind PATH_OBJECT_KINDS gives its name; the
objects further down the path are reached through it.
"""

import re
from dataclasses import dataclass, field
from enum import Enum

from prism.v1.authorizer_pb2 import ObjectKind


class InlineStores(Enum):
    """Where a response shows the vector stores its request may have made inline
    (`tool_resources.file_search.vector_stores`)."""

    NONE = "none"
    # In the response's own `tool_resources` (an assistant, a thread).
    RESPONSE = "response"
    # In the `tool_resources` of the thread it created.
    THREAD = "thread"


class BodyKind(Enum):
    NONE = "none"
    # A JSON object.
    JSON = "json"
    # A multipart upload (a file's bytes).
    MULTIPART = "multipart"


_PARAMETER = re.compile(r"\{(\w+)\}")

ASSISTANT = ObjectKind.OBJECT_KIND_ASSISTANT
THREAD = ObjectKind.OBJECT_KIND_THREAD
MESSAGE = ObjectKind.OBJECT_KIND_MESSAGE
RUN = ObjectKind.OBJECT_KIND_RUN
FILE = ObjectKind.OBJECT_KIND_FILE
VECTOR_STORE = ObjectKind.OBJECT_KIND_VECTOR_STORE
VECTOR_STORE_FILE_BATCH = ObjectKind.OBJECT_KIND_VECTOR_STORE_FILE_BATCH

# The kind of object a path's first parameter names, by the parameter's name.
PATH_OBJECT_KINDS: dict[str, ObjectKind.ValueType] = {
    "assistant_id": ASSISTANT,
    "thread_id": THREAD,
    "file_id": FILE,
    "vector_store_id": VECTOR_STORE,
}


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    operation_id: str
    body: BodyKind = BodyKind.NONE
    model_fields: tuple[str, ...] = ()
    # The body's top-level `assistant_id` is the assistant a new run uses.
    starts_run: bool = False
    # The path's `run_id` is a run the request sets back to work: with tool outputs, the
    # run's model answers again.
    resumes_run: bool = False
    # The request starts model work (tokens-per-minute limits apply).
    uses_model: bool = False
    # It stops work under way (a run, a file batch), so it adds no cost.
    cancels: bool = False
    # What a 2xx response creates: (the response's field holding an id, its kind).
    creates: tuple[tuple[str, ObjectKind.ValueType], ...] = ()
    # What a 2xx response modifies in a way the gateway records again (an assistant's model).
    modifies: tuple[tuple[str, ObjectKind.ValueType], ...] = ()
    inline_stores: InlineStores = InlineStores.NONE
    # A 2xx `{"deleted": true}` response deletes the object whose `id` it carries.
    deletes: bool = False
    # Its responses hold run objects.
    shows_runs: bool = False
    # Its responses hold run steps.
    shows_steps: bool = False
    # `"<METHOD> <template>"`: the route Check, policies and the request log name.
    name: str = field(init=False)
    # The path's parameters, in order (`("thread_id", "run_id")`).
    path_ids: tuple[str, ...] = field(init=False)
    # The path parameter naming the object the caller must own, and its kind; None when the
    # path has no parameter.
    path_object: tuple[str, ObjectKind.ValueType] | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", f"{self.method} {self.template}")
        path_ids = tuple(_PARAMETER.findall(self.template))
        object.__setattr__(self, "path_ids", path_ids)
        path_object = (path_ids[0], PATH_OBJECT_KINDS[path_ids[0]]) if path_ids else None
        object.__setattr__(self, "path_object", path_object)

    @property
    def may_add_cost(self) -> bool:
        """A spent budget refuses it: a POST other than a cancel. Reads, deletes and cancels
        add no cost, so they always pass the budget check."""
        return self.method == "POST" and not self.cancels

    @property
    def may_create(self) -> bool:
        """Its response may show objects it made, which the gateway must record as the
        caller's: its own (`creates`), or vector stores made inline."""
        return bool(self.creates) or self.inline_stores is not InlineStores.NONE

    def url_rule(self, converter: str = "") -> str:
        """The path in werkzeug's syntax (`/v1/threads/<thread_id>`), each parameter with
        `converter` when one is named (`<object_id:thread_id>`)."""
        prefix = f"{converter}:" if converter else ""
        return _PARAMETER.sub(rf"<{prefix}\1>", self.template)


_JSON = BodyKind.JSON
_MODEL = ("model",)


def _by_id(kind: ObjectKind.ValueType) -> tuple[tuple[str, ObjectKind.ValueType], ...]:
    """The response is the object: its `id`."""
    return (("id", kind),)


OPERATIONS: tuple[Operation, ...] = (
    # Assistants
    Operation("GET", "/v1/assistants", "listAssistants"),
    Operation(
        "POST",
        "/v1/assistants",
        "createAssistant",
        _JSON,
        model_fields=_MODEL,
        creates=_by_id(ASSISTANT),
        inline_stores=InlineStores.RESPONSE,
    ),
    Operation("GET", "/v1/assistants/{assistant_id}", "getAssistant"),
    # Recorded again with its new model, which runs naming none are checked against.
    Operation(
        "POST",
        "/v1/assistants/{assistant_id}",
        "modifyAssistant",
        _JSON,
        model_fields=_MODEL,
        modifies=_by_id(ASSISTANT),
        inline_stores=InlineStores.RESPONSE,
    ),
    Operation("DELETE", "/v1/assistants/{assistant_id}", "deleteAssistant", deletes=True),
    # Files
    Operation("GET", "/v1/files", "listFiles"),
    Operation("POST", "/v1/files", "createFile", BodyKind.MULTIPART, creates=_by_id(FILE)),
    Operation("DELETE", "/v1/files/{file_id}", "deleteFile", deletes=True),
    Operation("GET", "/v1/files/{file_id}", "retrieveFile"),
    Operation("GET", "/v1/files/{file_id}/content", "downloadFile"),
    # Threads
    Operation(
        "POST",
        "/v1/threads",
        "createThread",
        _JSON,
        creates=_by_id(THREAD),
        inline_stores=InlineStores.RESPONSE,
    ),
    Operation(
        "POST",
        "/v1/threads/runs",
        "createThreadAndRun",
        _JSON,
        model_fields=_MODEL,
        starts_run=True,
        uses_model=True,
        creates=(("id", RUN), ("thread_id", THREAD)),
        inline_stores=InlineStores.THREAD,
        shows_runs=True,
    ),
    Operation("GET", "/v1/threads/{thread_id}", "getThread"),
    Operation(
        "POST",
        "/v1/threads/{thread_id}",
        "modifyThread",
        _JSON,
        inline_stores=InlineStores.RESPONSE,
    ),
    Operation("DELETE", "/v1/threads/{thread_id}", "deleteThread", deletes=True),
    # Messages
    Operation("GET", "/v1/threads/{thread_id}/messages", "listMessages"),
    Operation(
        "POST",
        "/v1/threads/{thread_id}/messages",
        "createMessage",
        _JSON,
        creates=_by_id(MESSAGE),
    ),
    Operation("GET", "/v1/threads/{thread_id}/messages/{message_id}", "getMessage"),
    Operation("POST", "/v1/threads/{thread_id}/messages/{message_id}", "modifyMessage", _JSON),
    Operation(
        "DELETE", "/v1/threads/{thread_id}/messages/{message_id}", "deleteMessage", deletes=True
    ),
    # Runs
    Operation("GET", "/v1/threads/{thread_id}/runs", "listRuns", shows_runs=True),
    Operation(
        "POST",
        "/v1/threads/{thread_id}/runs",
        "createRun",
        _JSON,
        model_fields=_MODEL,
        starts_run=True,
        uses_model=True,
        creates=_by_id(RUN),
        shows_runs=True,
    ),
    Operation("GET", "/v1/threads/{thread_id}/runs/{run_id}", "getRun", shows_runs=True),
    Operation("POST", "/v1/threads/{thread_id}/runs/{run_id}", "modifyRun", _JSON, shows_runs=True),
    Operation(
        "POST",
        "/v1/threads/{thread_id}/runs/{run_id}/cancel",
        "cancelRun",
        cancels=True,
        shows_runs=True,
    ),
    Operation(
        "GET", "/v1/threads/{thread_id}/runs/{run_id}/steps", "listRunSteps", shows_steps=True
    ),
    Operation(
        "GET",
        "/v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}",
        "getRunStep",
        shows_steps=True,
    ),
    Operation(
        "POST",
        "/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
        "submitToolOuputsToRun",
        _JSON,
        resumes_run=True,
        uses_model=True,
        shows_runs=True,
    ),
    # Vector stores
    Operation("GET", "/v1/vector_stores", "listVectorStores"),
    Operation(
        "POST", "/v1/vector_stores", "createVectorStore", _JSON, creates=_by_id(VECTOR_STORE)
    ),
    Operation("GET", "/v1/vector_stores/{vector_store_id}", "getVectorStore"),
    Operation("POST", "/v1/vector_stores/{vector_store_id}", "modifyVectorStore", _JSON),
    Operation("DELETE", "/v1/vector_stores/{vector_store_id}", "deleteVectorStore", deletes=True),
    Operation(
        "POST",
        "/v1/vector_stores/{vector_store_id}/file_batches",
        "createVectorStoreFileBatch",
        _JSON,
        creates=_by_id(VECTOR_STORE_FILE_BATCH),
    ),
    Operation(
        "GET",
        "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}",
        "getVectorStoreFileBatch",
    ),
    Operation(
        "POST",
        "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel",
        "cancelVectorStoreFileBatch",
        cancels=True,
    ),
    Operation(
        "GET",
        "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/files",
        "listFilesInVectorStoreBatch",
    ),
    Operation("GET", "/v1/vector_stores/{vector_store_id}/files", "listVectorStoreFiles"),
    Operation("POST", "/v1/vector_stores/{vector_store_id}/files", "createVectorStoreFile", _JSON),
    Operation("GET", "/v1/vector_stores/{vector_store_id}/files/{file_id}", "getVectorStoreFile"),
    Operation(
        "DELETE", "/v1/vector_stores/{vector_store_id}/files/{file_id}", "deleteVectorStoreFile"
    ),
    Operation(
        "POST",
        "/v1/vector_stores/{vector_store_id}/files/{file_id}",
        "updateVectorStoreFileAttributes",
        _JSON,
    ),
    Operation(
        "GET",
        "/v1/vector_stores/{vector_store_id}/files/{file_id}/content",
        "retrieveVectorStoreFileContent",
    ),
    Operation("POST", "/v1/vector_stores/{vector_store_id}/search", "searchVectorStore", _JSON),
)
# The table by operation id: the endpoint name of its URL rule in the gateway and the engine.
OPERATIONS_BY_ID: dict[str, Operation] = {op.operation_id: op for op in OPERATIONS}
# By route name (`POST /v1/threads/{thread_id}/runs`), as Check names the request's.
OPERATIONS_BY_NAME: dict[str, Operation] = {op.name: op for op in OPERATIONS}
