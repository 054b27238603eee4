"""Threads: create (with first messages and tool_resources), retrieve, modify, delete."""

from quart import Blueprint

from ..errors import found, not_found
from ..ids import THREAD, new_id, now
from ..store import JSON
from .fields import json_body, store
from .handlers import handles
from .messages import MESSAGE_FIELDS, new_message, require_attached_files
from .tooling import settle_tool_resources, tool_resources

bp = Blueprint("threads", __name__)


async def _thread(thread_id: str) -> JSON:
    return found(await store().get_thread(thread_id), "thread", thread_id)


@handles(bp, "createThread")
async def create() -> JSON:
    body = await json_body(("messages", "tool_resources", "metadata"))
    thread = {
        "id": new_id(THREAD),
        "object": "thread",
        "created_at": now(),
        "tool_resources": tool_resources(body) or {},
        "metadata": body.metadata() or {},
    }
    messages = [
        new_message(item.only(MESSAGE_FIELDS), thread["id"])
        for item in body.items("messages", max_items=32) or []
    ]
    await require_attached_files(messages, "messages")
    await settle_tool_resources(thread["tool_resources"], "tool_resources")
    await store().create_thread(thread, messages)
    return thread


@handles(bp, "getThread")
async def retrieve(thread_id: str) -> JSON:
    return await _thread(thread_id)


@handles(bp, "modifyThread")
async def modify(thread_id: str) -> JSON:
    body = await json_body(("tool_resources", "metadata"))
    resources, metadata = tool_resources(body), body.metadata()
    thread = await _thread(thread_id)
    await settle_tool_resources(resources, "tool_resources")
    if body.has("tool_resources"):
        thread["tool_resources"] = resources or {}
    if body.has("metadata"):
        thread["metadata"] = metadata or {}
    await store().put_thread(thread)
    return thread


@handles(bp, "deleteThread")
async def delete(thread_id: str) -> JSON:
    if not await store().delete_thread(thread_id):
        raise not_found("thread", thread_id)
    return {"id": thread_id, "object": "thread.deleted", "deleted": True}
