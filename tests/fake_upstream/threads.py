"""Threads and their messages."""

from dataclasses import dataclass, field

from quart import Blueprint, request

from .assistants import read_tool_resources
from .errors import ApiError, file_not_found
from .store import JSON, Store, list_page, new_id, now
from .web import Fields, json_body, missing, store

bp = Blueprint("threads", __name__, url_prefix="/v1/threads")

_MESSAGE_FIELDS = ("role", "content", "attachments", "metadata")
_DETAILS = ("auto", "low", "high")


@dataclass
class NewMessage:
    role: str
    content: list[JSON]
    attachments: list[JSON] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)


def text_content(value: str, annotations: list[JSON] | None = None) -> JSON:
    return {"type": "text", "text": {"value": value, "annotations": annotations or []}}


def read_message(fields: Fields, state: Store) -> NewMessage:
    fields.only(_MESSAGE_FIELDS)
    role = fields.required_string("role", choices=("user", "assistant"))
    return NewMessage(
        role=role,
        content=_read_content(fields),
        attachments=_read_attachments(fields, state),
        metadata=fields.metadata() or {},
    )


def _read_content(fields: Fields) -> list[JSON]:
    raw = fields.data.get("content")
    if raw is None:
        raise missing(fields.param("content"))
    if isinstance(raw, str):
        return [text_content(raw)]
    content = []
    for i, item in enumerate(fields.array("content", min_items=1) or []):
        part = Fields.of(item, f"{fields.param('content')}[{i}]")
        kind = part.required_string("type", choices=("text", "image_file", "image_url"))
        if kind == "text":
            content.append(text_content(part.required_string("text")))
            continue
        image = part.required_object(kind)
        source = "file_id" if kind == "image_file" else "url"
        detail = image.string("detail", choices=_DETAILS) or "auto"
        content.append(
            {"type": kind, kind: {source: image.required_string(source), "detail": detail}}
        )
    return content


def _read_attachments(fields: Fields, state: Store) -> list[JSON]:
    attachments = []
    for i, item in enumerate(fields.array("attachments") or []):
        attachment = Fields.of(item, f"{fields.param('attachments')}[{i}]")
        file_id = attachment.required_string("file_id")
        if file_id not in state.files:
            raise file_not_found(file_id, attachment.param("file_id"))
        tools = []
        for j, raw in enumerate(attachment.array("tools") or []):
            tool = Fields.of(raw, f"{attachment.param('tools')}[{j}]")
            tools.append(
                {"type": tool.required_string("type", choices=("code_interpreter", "file_search"))}
            )
        attachments.append({"file_id": file_id, "tools": tools})
    return attachments


def add_message(
    state: Store,
    thread_id: str,
    new: NewMessage,
    *,
    assistant_id: str | None = None,
    run_id: str | None = None,
    status: str = "completed",
) -> JSON:
    created = now()
    message = {
        "id": new_id("msg_"),
        "object": "thread.message",
        "created_at": created,
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "run_id": run_id,
        "role": new.role,
        "content": new.content,
        "attachments": new.attachments,
        "metadata": new.metadata,
        "status": status,
        "incomplete_details": None,
        "completed_at": created if status == "completed" else None,
        "incomplete_at": None,
    }
    state.messages[thread_id][message["id"]] = message
    return message


def create_thread(state: Store, fields: Fields) -> JSON:
    fields.only(("messages", "tool_resources", "metadata"))
    messages = [
        read_message(Fields.of(raw, f"{fields.param('messages')}[{i}]"), state)
        for i, raw in enumerate(fields.array("messages") or [])
    ]
    metadata = fields.metadata() or {}
    thread = {
        "id": new_id("thread_"),
        "object": "thread",
        "created_at": now(),
        "tool_resources": read_tool_resources(fields, state) or {},
        "metadata": metadata,
    }
    state.threads[thread["id"]] = thread
    state.messages[thread["id"]] = {}
    state.runs[thread["id"]] = {}
    for message in messages:
        add_message(state, thread["id"], message)
    return thread


def refuse_while_running(state: Store, thread_id: str) -> None:
    if active := state.active_run(thread_id):
        raise ApiError(
            400,
            f"Thread {thread_id} already has an active run {active.obj['id']}.",
        )


@bp.post("")
async def create() -> JSON:
    return create_thread(store(), await json_body(("messages", "tool_resources", "metadata")))


@bp.get("/<thread_id>")
async def retrieve(thread_id: str) -> JSON:
    return store().thread(thread_id)


@bp.post("/<thread_id>")
async def modify(thread_id: str) -> JSON:
    state = store()
    thread = state.thread(thread_id)
    body = await json_body(("tool_resources", "metadata"))
    if body.has("metadata"):
        thread["metadata"] = body.metadata() or {}
    if body.has("tool_resources"):
        thread["tool_resources"] = read_tool_resources(body, state) or {}
    return thread


@bp.delete("/<thread_id>")
async def delete(thread_id: str) -> JSON:
    state = store()
    state.thread(thread_id)
    for run_id, run in state.runs.pop(thread_id).items():
        run.pending = None  # a run still streaming must not write into the deleted thread
        del state.steps[run_id]
    del state.threads[thread_id]
    del state.messages[thread_id]
    return {"id": thread_id, "object": "thread.deleted", "deleted": True}


@bp.get("/<thread_id>/messages")
async def list_messages(thread_id: str) -> JSON:
    state = store()
    state.thread(thread_id)
    run_id = request.args.get("run_id")
    messages = [m for m in state.messages[thread_id].values() if run_id in (None, m["run_id"])]
    return list_page(messages, request.args)


@bp.post("/<thread_id>/messages")
async def create_message(thread_id: str) -> JSON:
    state = store()
    state.thread(thread_id)
    new = read_message(await json_body(_MESSAGE_FIELDS), state)
    if active := state.active_run(thread_id):
        raise ApiError(
            400,
            f"Can't add messages to {thread_id} while a run {active.obj['id']} is active.",
        )
    return add_message(state, thread_id, new)


@bp.get("/<thread_id>/messages/<message_id>")
async def retrieve_message(thread_id: str, message_id: str) -> JSON:
    return store().message(thread_id, message_id)


@bp.post("/<thread_id>/messages/<message_id>")
async def modify_message(thread_id: str, message_id: str) -> JSON:
    message = store().message(thread_id, message_id)
    body = await json_body(("metadata",))
    if body.has("metadata"):
        message["metadata"] = body.metadata() or {}
    return message


@bp.delete("/<thread_id>/messages/<message_id>")
async def delete_message(thread_id: str, message_id: str) -> JSON:
    state = store()
    state.message(thread_id, message_id)
    del state.messages[thread_id][message_id]
    return {"id": message_id, "object": "thread.message.deleted", "deleted": True}
