"""THE route table: the 44 operations of the Assistants API the gateway serves.

Each entry is data: the HTTP method, the path template as OpenAI documents it (prefixed with
`/v1`), the operation id, what kind of body it takes, whether `"stream": true` is allowed and
which top-level JSON fields name a model. The proxy registers one URL rule per entry and sends
`"<METHOD> <template>"` to the control plane's Check; nothing else repeats this table.
"""

import re
from dataclasses import dataclass, field
from enum import Enum

from werkzeug.routing import BaseConverter

MIB = 1024 * 1024
# Limits on what a client may send; bodies over them get 413 before anything is forwarded.
JSON_BODY_LIMIT = 8 * MIB
# OpenAI takes files up to 512 MB; the upload's body also carries the multipart framing.
UPLOAD_BODY_LIMIT = 513 * MIB


class BodyKind(Enum):
    # Nothing is read from the client or forwarded.
    NONE = "none"
    # Read whole (up to JSON_BODY_LIMIT), parsed to find models, forwarded as the exact bytes.
    JSON = "json"
    # Streamed to the upstream as it arrives (up to UPLOAD_BODY_LIMIT), never held whole.
    MULTIPART = "multipart"


_PARAMETER = re.compile(r"\{(\w+)\}")


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
    streams: bool = False
    model_fields: tuple[str, ...] = ()
    # What the control plane's Check receives as `route`.
    check_name: str = field(init=False)
    # The same path in werkzeug's syntax, for the URL map.
    rule: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "check_name", f"{self.method} {self.template}")
        object.__setattr__(self, "rule", _PARAMETER.sub(r"<object_id:\1>", self.template))


_JSON = BodyKind.JSON
_MODEL = ("model",)

ROUTES: tuple[Route, ...] = (
    # Assistants
    Route("GET", "/v1/assistants", "listAssistants"),
    Route("POST", "/v1/assistants", "createAssistant", _JSON, model_fields=_MODEL),
    Route("GET", "/v1/assistants/{assistant_id}", "getAssistant"),
    Route("POST", "/v1/assistants/{assistant_id}", "modifyAssistant", _JSON, model_fields=_MODEL),
    Route("DELETE", "/v1/assistants/{assistant_id}", "deleteAssistant"),
    # Files
    Route("GET", "/v1/files", "listFiles"),
    Route("POST", "/v1/files", "createFile", BodyKind.MULTIPART),
    Route("DELETE", "/v1/files/{file_id}", "deleteFile"),
    Route("GET", "/v1/files/{file_id}", "retrieveFile"),
    Route("GET", "/v1/files/{file_id}/content", "downloadFile"),
    # Threads
    Route("POST", "/v1/threads", "createThread", _JSON),
    Route(
        "POST", "/v1/threads/runs", "createThreadAndRun", _JSON, streams=True, model_fields=_MODEL
    ),
    Route("GET", "/v1/threads/{thread_id}", "getThread"),
    Route("POST", "/v1/threads/{thread_id}", "modifyThread", _JSON),
    Route("DELETE", "/v1/threads/{thread_id}", "deleteThread"),
    # Messages
    Route("GET", "/v1/threads/{thread_id}/messages", "listMessages"),
    Route("POST", "/v1/threads/{thread_id}/messages", "createMessage", _JSON),
    Route("GET", "/v1/threads/{thread_id}/messages/{message_id}", "getMessage"),
    Route("POST", "/v1/threads/{thread_id}/messages/{message_id}", "modifyMessage", _JSON),
    Route("DELETE", "/v1/threads/{thread_id}/messages/{message_id}", "deleteMessage"),
    # Runs
    Route("GET", "/v1/threads/{thread_id}/runs", "listRuns"),
    Route(
        "POST",
        "/v1/threads/{thread_id}/runs",
        "createRun",
        _JSON,
        streams=True,
        model_fields=_MODEL,
    ),
    Route("GET", "/v1/threads/{thread_id}/runs/{run_id}", "getRun"),
    Route("POST", "/v1/threads/{thread_id}/runs/{run_id}", "modifyRun", _JSON),
    Route("POST", "/v1/threads/{thread_id}/runs/{run_id}/cancel", "cancelRun"),
    Route("GET", "/v1/threads/{thread_id}/runs/{run_id}/steps", "listRunSteps"),
    Route("GET", "/v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}", "getRunStep"),
    Route(
        "POST",
        "/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
        "submitToolOuputsToRun",
        _JSON,
        streams=True,
    ),
    # Vector stores
    Route("GET", "/v1/vector_stores", "listVectorStores"),
    Route("POST", "/v1/vector_stores", "createVectorStore", _JSON),
    Route("GET", "/v1/vector_stores/{vector_store_id}", "getVectorStore"),
    Route("POST", "/v1/vector_stores/{vector_store_id}", "modifyVectorStore", _JSON),
    Route("DELETE", "/v1/vector_stores/{vector_store_id}", "deleteVectorStore"),
    Route(
        "POST",
        "/v1/vector_stores/{vector_store_id}/file_batches",
        "createVectorStoreFileBatch",
        _JSON,
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
