"""Messages of a thread: create, list (optionally one run's), retrieve, modify, delete."""

from typing import Any

from quart import Blueprint, request

from ..errors import ApiError, file_not_found, found, not_found
from ..ids import MESSAGE, new_id, now
from ..pagination import list_body, parse_page
from ..store import JSON
from .fields import Fields, json_body, metadata_change, missing, store
from .handlers import handles

bp = Blueprint("messages", __name__)

MESSAGE_FIELDS = ("role", "content", "attachments", "metadata")
_PART_TYPES = ("text", "image_file", "image_url")
_ATTACHMENT_TOOLS = ("code_interpreter", "file_search")


def new_message(body: Fields, thread_id: str) -> JSON:
    """A user's (or an inserted assistant's) message, completed as soon as it is created."""
    role = body.required_string("role", choices=("user", "assistant"))
    content = _content(body)
    attachments = [_attachment(item) for item in body.items("attachments") or []]
    created = now()
    return {
        "id": new_id(MESSAGE),
        "object": "thread.message",
        "created_at": created,
        "thread_id": thread_id,
        "status": "completed",
        "incomplete_details": None,
        "completed_at": created,
        "incomplete_at": None,
        "role": role,
        "content": content,
        "assistant_id": None,
        "run_id": None,
        "attachments": attachments,
        "metadata": body.metadata() or {},
    }


def _content(body: Fields) -> list[dict[str, Any]]:
    """A string is one text part; an array holds text and image parts, one at least."""
    value = body.data.get("content")
    param = body.param("content")
    if isinstance(value, str):
        return [_text(value)]
    if value is None:
        raise missing(param)
    if not isinstance(value, list):
        raise ApiError(
            400,
            f"Invalid type for '{param}': expected one of a string or an array of objects, "
            f"but got {type(value).__name__} instead.",
            param=param,
            code="invalid_type",
        )
    parts = body.items("content", min_items=1) or []
    return [_part(part) for part in parts]


def _text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": {"value": value, "annotations": []}}


def _part(part: Fields) -> dict[str, Any]:
    kind = part.required_string("type", choices=_PART_TYPES)
    if kind == "text":
        part.only(("type", "text"))
        return _text(part.required_string("text"))
    part.only(("type", kind))
    image = part.required_object(kind)
    source = "file_id" if kind == "image_file" else "url"
    image.only((source, "detail"))
    read = {source: image.required_string(source)}
    detail = image.string("detail", choices=("auto", "low", "high"))
    if detail is not None:
        read["detail"] = detail
    return {"type": kind, kind: read}


def _attachment(item: Fields) -> dict[str, Any]:
    item.only(("file_id", "tools"))
    file_id = item.required_string("file_id")
    tools = []
    for tool in item.items("tools") or []:
        tool.only(("type",))
        tools.append({"type": tool.required_string("type", choices=_ATTACHMENT_TOOLS)})
    return {"file_id": file_id, "tools": tools}


async def require_attached_files(messages: list[JSON], array: str) -> None:
    """Refuses messages attaching a file that does not exist, as their run could not read
    it; `array` names the body's array they came in ("" for one message that is the body)."""
    for index, message in enumerate(messages):
        file_ids = [attachment["file_id"] for attachment in message["attachments"]]
        missing = await store().missing_file(file_ids)
        if missing is not None:
            place = f"attachments[{file_ids.index(missing)}].file_id"
            raise file_not_found(missing, f"{array}[{index}].{place}" if array else place)


async def thread_exists(thread_id: str) -> None:
    if await store().get_thread(thread_id) is None:
        raise not_found("thread", thread_id)


async def _message(thread_id: str, message_id: str) -> JSON:
    await thread_exists(thread_id)
    return found(await store().get_message(thread_id, message_id), "message", message_id)


@handles(bp, "createMessage")
async def create(thread_id: str) -> JSON:
    body = await json_body(MESSAGE_FIELDS)
    await thread_exists(thread_id)
    message = new_message(body, thread_id)
    await require_attached_files([message], "")
    active = await store().active_run(thread_id)
    if active is not None:
        # The run's prompt is the thread as it was; OpenAI refuses the message likewise.
        raise ApiError(400, f"Can't add messages to {thread_id} while a run {active} is active.")
    await store().add_message(message)
    return message


@handles(bp, "listMessages")
async def list_messages(thread_id: str) -> JSON:
    page = parse_page(request.args)
    run_id = request.args.get("run_id") or None
    await thread_exists(thread_id)
    return list_body(*await store().list_messages(thread_id, page, run_id))


@handles(bp, "getMessage")
async def retrieve(thread_id: str, message_id: str) -> JSON:
    return await _message(thread_id, message_id)


@handles(bp, "modifyMessage")
async def modify(thread_id: str, message_id: str) -> JSON:
    metadata = await metadata_change()
    message = await _message(thread_id, message_id)
    if metadata is not None:
        message["metadata"] = metadata
        await store().put_message(message)
    return message


@handles(bp, "deleteMessage")
async def delete(thread_id: str, message_id: str) -> JSON:
    await thread_exists(thread_id)
    if not await store().delete_message(thread_id, message_id):
        raise not_found("message", message_id)
    return {"id": message_id, "object": "thread.message.deleted", "deleted": True}
