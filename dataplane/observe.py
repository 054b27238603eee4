"""Reading what an upstream response shows: the objects it created (vector stores made
inline included), modified or deleted, the runs it saw end with usage (their model and
tokens, which price them) and the run steps it saw completed with tool calls (file_search,
code_interpreter, which have fees). The data plane tells the control plane (records.py),
which charges each run and step once. For what a response created before the client could
see it, it also says how the upstream would delete (or stop) each, should the record fail.

Two readers, neither of which changes a byte the client receives:
- `inspect_json` reads a JSON body the gateway holds whole;
- `EventStream` parses server-sent events incrementally from the chunks of a streamed run as
  they are relayed, and `run_event_seen` says what each event shows. Only the few events
  that matter are decoded as JSON; message deltas are skipped unparsed.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from prism.operations import (
    ASSISTANT,
    FILE,
    MESSAGE,
    RUN,
    THREAD,
    VECTOR_STORE,
    VECTOR_STORE_FILE_BATCH,
    InlineStores,
    Operation,
)
from prism.runs import TERMINAL_RUN_STATUSES, ended_run
from prism.v1.authorizer_pb2 import ObjectKind, OwnedObject, RunUsage, StepToolCalls
from prism.wire_copy import to_message

from .references import RequestFacts

_RUN_ENDED_EVENTS = frozenset(f"thread.run.{status}" for status in TERMINAL_RUN_STATUSES)
_STEP_COMPLETED_EVENT = "thread.run.step.completed"
# Objects that belong to a thread, whose thread is recorded with them.
_IN_THREAD = frozenset({RUN, MESSAGE})
# Objects whose model is recorded with them.
_WITH_MODEL = frozenset({ASSISTANT, RUN})
# How the upstream deletes, or stops, an object of each kind: the method and the path under
# the API root, filled from the object's id, its thread and its vector store.
_UNDO = {
    ASSISTANT: ("DELETE", "/assistants/{id}"),
    THREAD: ("DELETE", "/threads/{id}"),
    MESSAGE: ("DELETE", "/threads/{thread_id}/messages/{id}"),
    RUN: ("POST", "/threads/{thread_id}/runs/{id}/cancel"),
    FILE: ("DELETE", "/files/{id}"),
    VECTOR_STORE: ("DELETE", "/vector_stores/{id}"),
    VECTOR_STORE_FILE_BATCH: ("POST", "/vector_stores/{vector_store_id}/file_batches/{id}/cancel"),
}
# An upstream request: (method, path under the API root).
Undo = tuple[str, str]
# The events announcing a new object, and its kind.
_CREATED_EVENTS = {
    "thread.created": THREAD,
    "thread.run.created": RUN,
    "thread.message.created": MESSAGE,
}


@dataclass
class Seen:
    """What one response (or part of one) showed."""

    objects: list[OwnedObject] = field(default_factory=list)
    deleted_ids: list[str] = field(default_factory=list)
    runs: list[RunUsage] = field(default_factory=list)
    steps: list[StepToolCalls] = field(default_factory=list)
    # What deletes or stops the objects this response created before the client saw their
    # ids, in order: sent upstream when they cannot be recorded.
    undo: list[Undo] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.objects or self.deleted_ids or self.runs or self.steps)

    def add(self, other: "Seen") -> None:
        self.objects += other.objects
        self.deleted_ids += other.deleted_ids
        self.runs += other.runs
        self.steps += other.steps
        self.undo += other.undo


def inspect_json(route: Operation, body: bytes, asked: RequestFacts) -> Seen:
    """What a successful (2xx) JSON response of `route` shows; nothing when it is no JSON
    object."""
    document = json_object(body)
    seen = Seen()
    if document is None:
        return seen
    for name, kind in route.creates:
        created = _owned(document, name, kind)
        if created is not None:
            seen.objects.append(created)
            seen.undo.append(_undo(created, document))
    for name, kind in route.modifies:
        modified = _owned(document, name, kind)
        if modified is not None:
            seen.objects.append(modified)
    if route.inline_stores is InlineStores.RESPONSE:
        seen.add(made_stores(document, asked))
    object_id = document.get("id")
    if route.deletes and document.get("deleted") is True and isinstance(object_id, str):
        seen.deleted_ids.append(object_id)
    if route.shows_runs:
        seen.runs += _ended_runs(document)
    if route.shows_steps:
        seen.steps += _completed_steps(document)
    return seen


@dataclass(frozen=True)
class ServerSentEvent:
    name: str
    data: str


class EventStream:
    """Server-sent events (the WHATWG event stream format) parsed from bytes as they arrive.

    Lines end with LF, CRLF or CR, a line may be split across chunks, an event ends at a blank
    line. An event larger than `max_event_bytes` is dropped unread, so a stream cannot make
    the gateway hold more than that.
    """

    def __init__(self, max_event_bytes: int) -> None:
        self._max = max_event_bytes
        # The start of a line whose end has not arrived, in pieces: joined once it does, so a
        # long line arriving in many chunks is not copied again with each.
        self._partial: list[bytes] = []
        self._partial_size = 0
        # The last chunk ended with CR: an LF starting the next one belongs to that line end.
        self._after_cr = False
        self._name = ""
        self._data: list[bytes] = []
        self._size = 0
        self._oversized = False

    def feed(self, chunk: bytes) -> Iterator[ServerSentEvent]:
        """The events that `chunk` completes, in order."""
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._after_cr = chunk.endswith(b"\r")
        if not chunk:
            return
        if b"\n" not in chunk and b"\r" not in chunk:
            self._hold(chunk)
            return
        lines = b"".join([*self._partial, chunk]).splitlines(keepends=True)
        self._partial, self._partial_size = [], 0
        if not lines[-1].endswith((b"\n", b"\r")):
            self._hold(lines.pop())
        for line in lines:
            event = self._line(line.rstrip(b"\r\n"))
            if event is not None:
                yield event

    def _hold(self, piece: bytes) -> None:
        self._partial_size += len(piece)
        if self._partial_size > self._max:
            self._partial, self._partial_size = [], 0
            self._oversized = True
        else:
            self._partial.append(piece)

    def _line(self, line: bytes) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(b":"):  # a comment
            return None
        name, _, value = line.partition(b":")
        value = value.removeprefix(b" ")
        if name == b"event":
            self._name = value.decode("utf-8", "replace")
        elif name == b"data":
            self._size += len(value)
            if self._size > self._max:
                self._oversized = True
                self._data = []
            elif not self._oversized:
                self._data.append(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event = None
        if self._data and not self._oversized:
            data = b"\n".join(self._data).decode("utf-8", "replace")
            event = ServerSentEvent(self._name or "message", data)
        self._name, self._data, self._size, self._oversized = "", [], 0, False
        return event


def made_stores(document: dict[str, Any], asked: RequestFacts) -> Seen:
    """The vector stores an assistant or thread holds that its request made inline: those in
    its `tool_resources` that the request did not name (with vector_store_ids)."""
    seen = Seen()
    if not asked.makes_vector_stores:
        return seen
    resources = document.get("tool_resources")
    file_search = resources.get("file_search") if isinstance(resources, dict) else None
    ids = file_search.get("vector_store_ids") if isinstance(file_search, dict) else None
    for store_id in ids if isinstance(ids, list) else ():
        if isinstance(store_id, str) and store_id and store_id not in asked.named_vector_stores:
            store = OwnedObject(id=store_id, kind=VECTOR_STORE)
            seen.objects.append(store)
            seen.undo.append(_undo(store, {}))
    return seen


def run_event_seen(event: ServerSentEvent, asked: RequestFacts) -> Seen:
    """What one event of a run's stream shows: a thread (with the vector stores its request
    made), run or message it created, a run that ended with usage, or a step completed with
    tool calls. Only a new thread goes with its undo: the client sees the others' ids before
    their Record, which waits for the stream's end."""
    seen = Seen()
    kind = _CREATED_EVENTS.get(event.name)
    if kind is not None:
        document = json_object(event.data)
        created = _owned(document, "id", kind) if document is not None else None
        if created is not None and document is not None:
            seen.objects.append(created)
            if kind == THREAD:
                seen.undo.append(_undo(created, document))
                seen.add(made_stores(document, asked))
    elif event.name in _RUN_ENDED_EVENTS:
        document = json_object(event.data)
        if document is not None:
            seen.runs += _ended_runs(document)
    elif event.name == _STEP_COMPLETED_EVENT:
        document = json_object(event.data)
        if document is not None:
            seen.steps += _completed_steps(document)
    return seen


def json_object(body: str | bytes) -> dict[str, Any] | None:
    """The JSON object body holds; None for anything else."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _owned(document: dict[str, Any], name: str, kind: ObjectKind.ValueType) -> OwnedObject | None:
    object_id = document.get(name)
    if not isinstance(object_id, str) or not object_id:
        return None
    # An assistant's model is checked for the runs that name none; a run's, for the tool
    # outputs submitted to it.
    model = document.get("model") if kind in _WITH_MODEL else None
    # A run's thread is where the sweeper fetches it if nobody looks at it again.
    thread_id = document.get("thread_id") if kind in _IN_THREAD else None
    return OwnedObject(
        id=object_id,
        kind=kind,
        model=model if isinstance(model, str) else "",
        thread_id=thread_id if isinstance(thread_id, str) else "",
    )


def _undo(created: OwnedObject, document: dict[str, Any]) -> Undo:
    method, template = _UNDO[created.kind]
    vector_store_id = document.get("vector_store_id")
    path = template.format(
        id=quote(created.id, safe=""),
        thread_id=quote(created.thread_id, safe=""),
        vector_store_id=quote(vector_store_id if isinstance(vector_store_id, str) else "", safe=""),
    )
    return method, path


def _listed(document: dict[str, Any], kind: str) -> list[Any]:
    """The objects of `kind` in a list of them, or the document itself if it is one."""
    items = document.get("data") if document.get("object") == "list" else [document]
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, dict) and item.get("object") == kind]


def _ended_runs(document: dict[str, Any]) -> list[RunUsage]:
    """The runs in a run object or a list of them that have ended with usage."""
    found = []
    for run in _listed(document, "thread.run"):
        ended = ended_run(run)
        if ended is not None:
            found.append(to_message(RunUsage, ended))
    return found


def _completed_steps(document: dict[str, Any]) -> list[StepToolCalls]:
    """The completed tool_calls steps in a step object or a list of them, with how many
    calls of each charged tool they made."""
    found = []
    for step in _listed(document, "thread.run.step"):
        details = step.get("step_details")
        step_id, run_id, thread_id = step.get("id"), step.get("run_id"), step.get("thread_id")
        if (
            step.get("status") != "completed"
            or not isinstance(details, dict)
            or details.get("type") != "tool_calls"
            or not isinstance(details.get("tool_calls"), list)
            or not isinstance(step_id, str)
        ):
            continue
        kinds = [call.get("type") for call in details["tool_calls"] if isinstance(call, dict)]
        file_search, code = kinds.count("file_search"), kinds.count("code_interpreter")
        if file_search or code:
            found.append(
                StepToolCalls(
                    step_id=step_id,
                    run_id=run_id if isinstance(run_id, str) else "",
                    thread_id=thread_id if isinstance(thread_id, str) else "",
                    file_search_calls=file_search,
                    code_interpreter_calls=code,
                )
            )
    return found
