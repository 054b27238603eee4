"""THE route table: the 44 operations of the Assistants API the gateway serves.

Each entry is data: the HTTP method, the path template as OpenAI documents it (prefixed with
`/v1`), the operation id, what kind of body it takes, which top-level JSON fields name a
model, whether it starts or resumes a run or other model work, and what a successful
response creates, modifies or deletes (for the control plane's Record). The proxy
registers one URL rule per entry and sends `"<METHOD> <template>"` to the control plane's
Check; nothing else repeats this table.

The object a request must own is the path's first parameter (`thread_id` in
`/v1/threads/{thread_id}/runs/{run_id}`), of the kind PATH_OBJECT_KINDS gives its name; the
objects further down the path are reached through it, which the upstream checks.
"""

import re
from dataclasses import dataclass, field
from enum import Enum

from werkzeug.routing import BaseConverter

from prism.v1.authorizer_pb2 import ObjectKind

MIB = 1024 * 1024
# Limits on what a client may send; bodies over them get 413 before anything is forwarded.
JSON_BODY_LIMIT = 8 * MIB
# OpenAI takes files up to 512 MB; the upload's body also carries the multipart framing.
UPLOAD_BODY_LIMIT = 513 * MIB


class InlineStores(Enum):
    """Where a response shows the vector stores its request may have made inline
    (`tool_resources.file_search.vector_stores`), which become the org's."""

    NONE = "none"
    # In the response's own `tool_resources` (an assistant, a thread).
    RESPONSE = "response"
    # In the `tool_resources` of the thread it created, which the gateway then reads.
    THREAD = "thread"


class BodyKind(Enum):
    # Nothing is read from the client or forwarded.
    NONE = "none"
    # Read whole (up to JSON_BODY_LIMIT), parsed to find models, forwarded as the exact bytes.
    JSON = "json"
    # Streamed to the upstream as it arrives (up to UPLOAD_BODY_LIMIT), never held whole.
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


class ObjectIdConverter(BaseConverter):
    """A path parameter: one segment, and never `.` or `..`.

    No object id is a dot segment, and a server or proxy in front of the upstream may resolve
    one, so `DELETE /v1/threads/t/messages/..` (deleteMessage, as Check saw it) would arrive as
    `DELETE /v1/threads/t` (deleteThread). Such paths match no route: 404 unknown URL.
    """

    regex = r"(?!\.\.?(?![^/]))[^/]+"
    # Set explicitly: werkzeug would otherwise infer False from the `/` in the regex.
    part_isolating = True


# The URL map's converters the route rules use; the app registers them.
CONVERTERS = {"object_id": ObjectIdConverter}


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    operation_id: str
    body: BodyKind = BodyKind.NONE
    model_fields: tuple[str, ...] = ()
    # The body's top-level `assistant_id` is the assistant a new run uses (Check's
    # model_object_id).
    starts_run: bool = False
    # The path's `run_id` is a run the request sets back to work (Check's model_object_id):
    # with tool outputs, the run's model answers again.
    resumes_run: bool = False
    # The request starts model work, so tokens-per-minute limits apply (Check's uses_model).
    uses_model: bool = False
    # What a 2xx response creates: (the response's field holding an id, its kind).
    creates: tuple[tuple[str, ObjectKind.ValueType], ...] = ()
    # What a 2xx response modifies and the gateway records again (an assistant's new model).
    modifies: tuple[tuple[str, ObjectKind.ValueType], ...] = ()
    inline_stores: InlineStores = InlineStores.NONE
    # A 2xx `{"deleted": true}` response deletes the object whose `id` it carries.
    deletes: bool = False
    # Its responses hold run objects, whose usage counts once a run has ended.
    shows_runs: bool = False
    # Its responses hold run steps, whose tool calls are charged once a step has completed.
    shows_steps: bool = False
    # What the control plane's Check receives as `route`.
    check_name: str = field(init=False)
    # The same path in werkzeug's syntax, for the URL map.
    rule: str = field(init=False)
    # The path parameter naming the object the caller must own, and its kind; None when the
    # path has no parameter.
    path_object: tuple[str, ObjectKind.ValueType] | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "check_name", f"{self.method} {self.template}")
        object.__setattr__(self, "rule", _PARAMETER.sub(r"<object_id:\1>", self.template))
        first = _PARAMETER.search(self.template)
        path_object = (first[1], PATH_OBJECT_KINDS[first[1]]) if first else None
        object.__setattr__(self, "path_object", path_object)

    @property
    def observed(self) -> bool:
        """Whether the gateway reads this route's responses for the control plane's Record."""
        return (
            bool(self.creates or self.modifies)
            or self.inline_stores is not InlineStores.NONE
            or self.deletes
            or self.shows_runs
            or self.shows_steps
        )


_JSON = BodyKind.JSON
_MODEL = ("model",)


def _by_id(kind: ObjectKind.ValueType) -> tuple[tuple[str, ObjectKind.ValueType], ...]:
    """The response is the object: its `id`."""
    return (("id", kind),)


ROUTES: tuple[Route, ...] = (
    # Assistants
    Route("GET", "/v1/assistants", "listAssistants"),
    Route(
        "POST",
        "/v1/assistants",
        "createAssistant",
        _JSON,
        model_fields=_MODEL,
        creates=_by_id(ASSISTANT),
        inline_stores=InlineStores.RESPONSE,
    ),
    Route("GET", "/v1/assistants/{assistant_id}", "getAssistant"),
    # Recorded again with its new model, which runs naming none are checked against.
    Route(
        "POST",
        "/v1/assistants/{assistant_id}",
        "modifyAssistant",
        _JSON,
        model_fields=_MODEL,
        modifies=_by_id(ASSISTANT),
        inline_stores=InlineStores.RESPONSE,
    ),
    Route("DELETE", "/v1/assistants/{assistant_id}", "deleteAssistant", deletes=True),
    # Files
    Route("GET", "/v1/files", "listFiles"),
    Route("POST", "/v1/files", "createFile", BodyKind.MULTIPART, creates=_by_id(FILE)),
    Route("DELETE", "/v1/files/{file_id}", "deleteFile", deletes=True),
    Route("GET", "/v1/files/{file_id}", "retrieveFile"),
    Route("GET", "/v1/files/{file_id}/content", "downloadFile"),
    # Threads
    Route(
        "POST",
        "/v1/threads",
        "createThread",
        _JSON,
        creates=_by_id(THREAD),
        inline_stores=InlineStores.RESPONSE,
    ),
    Route(
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
    Route("GET", "/v1/threads/{thread_id}", "getThread"),
    Route(
        "POST",
        "/v1/threads/{thread_id}",
        "modifyThread",
        _JSON,
        inline_stores=InlineStores.RESPONSE,
    ),
    Route("DELETE", "/v1/threads/{thread_id}", "deleteThread", deletes=True),
    # Messages
    Route("GET", "/v1/threads/{thread_id}/messages", "listMessages"),
    Route(
        "POST",
        "/v1/threads/{thread_id}/messages",
        "createMessage",
        _JSON,
        creates=_by_id(MESSAGE),
    ),
    Route("GET", "/v1/threads/{thread_id}/messages/{message_id}", "getMessage"),
    Route("POST", "/v1/threads/{thread_id}/messages/{message_id}", "modifyMessage", _JSON),
    Route("DELETE", "/v1/threads/{thread_id}/messages/{message_id}", "deleteMessage", deletes=True),
    # Runs
    Route("GET", "/v1/threads/{thread_id}/runs", "listRuns", shows_runs=True),
    Route(
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
    Route("GET", "/v1/threads/{thread_id}/runs/{run_id}", "getRun", shows_runs=True),
    Route("POST", "/v1/threads/{thread_id}/runs/{run_id}", "modifyRun", _JSON, shows_runs=True),
    Route("POST", "/v1/threads/{thread_id}/runs/{run_id}/cancel", "cancelRun", shows_runs=True),
    Route("GET", "/v1/threads/{thread_id}/runs/{run_id}/steps", "listRunSteps", shows_steps=True),
    Route(
        "GET",
        "/v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}",
        "getRunStep",
        shows_steps=True,
    ),
    Route(
        "POST",
        "/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
        "submitToolOuputsToRun",
        _JSON,
        resumes_run=True,
        uses_model=True,
        shows_runs=True,
    ),
    # Vector stores
    Route("GET", "/v1/vector_stores", "listVectorStores"),
    Route("POST", "/v1/vector_stores", "createVectorStore", _JSON, creates=_by_id(VECTOR_STORE)),
    Route("GET", "/v1/vector_stores/{vector_store_id}", "getVectorStore"),
    Route("POST", "/v1/vector_stores/{vector_store_id}", "modifyVectorStore", _JSON),
    Route("DELETE", "/v1/vector_stores/{vector_store_id}", "deleteVectorStore", deletes=True),
    Route(
        "POST",
        "/v1/vector_stores/{vector_store_id}/file_batches",
        "createVectorStoreFileBatch",
        _JSON,
        creates=_by_id(VECTOR_STORE_FILE_BATCH),
    ),
    Route(
        "GET",
        "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}",
        "getVectorStoreFileBatch",
    ),
    Route(
        "POST",
        "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel",
        "cancelVectorStoreFileBatch",
    ),
    Route(
        "GET",
        "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/files",
        "listFilesInVectorStoreBatch",
    ),
    Route("GET", "/v1/vector_stores/{vector_store_id}/files", "listVectorStoreFiles"),
    Route("POST", "/v1/vector_stores/{vector_store_id}/files", "createVectorStoreFile", _JSON),
    Route("GET", "/v1/vector_stores/{vector_store_id}/files/{file_id}", "getVectorStoreFile"),
    Route("DELETE", "/v1/vector_stores/{vector_store_id}/files/{file_id}", "deleteVectorStoreFile"),
    Route(
        "POST",
        "/v1/vector_stores/{vector_store_id}/files/{file_id}",
        "updateVectorStoreFileAttributes",
        _JSON,
    ),
    Route(
        "GET",
        "/v1/vector_stores/{vector_store_id}/files/{file_id}/content",
        "retrieveVectorStoreFileContent",
    ),
    Route("POST", "/v1/vector_stores/{vector_store_id}/search", "searchVectorStore", _JSON),
)
# The table by operation id, which is each route's endpoint name in the URL map.
ROUTES_BY_OPERATION: dict[str, Route] = {route.operation_id: route for route in ROUTES}
