"""Assistants: create, list, retrieve, modify, delete."""

from typing import Any

from quart import Blueprint, request

from ..errors import found, not_found
from ..ids import ASSISTANT, new_id, now
from ..pagination import list_body, parse_page
from ..store import JSON
from .fields import Fields, json_body, store
from .handlers import handles
from .tooling import response_format, settle_tool_resources, tool_resources, tools

bp = Blueprint("assistants", __name__)

_FIELDS = (
    "model",
    "name",
    "description",
    "instructions",
    "tools",
    "tool_resources",
    "metadata",
    "temperature",
    "top_p",
    "response_format",
    "reasoning_effort",
)


def _read(body: Fields, *, creating: bool) -> dict[str, Any]:
    """The fields the body sets, validated; on create, `model` is required."""
    read: dict[str, Any] = {
        "model": body.string("model", required=creating, max_length=256),
        "name": body.string("name", max_length=256),
        "description": body.string("description", max_length=512),
        "instructions": body.string("instructions", max_length=256000),
        "tools": tools(body),
        "tool_resources": tool_resources(body),
        "metadata": body.metadata(),
        "temperature": body.number("temperature", minimum=0, maximum=2),
        "top_p": body.number("top_p", minimum=0, maximum=1),
        "response_format": response_format(body),
        "reasoning_effort": body.string(
            "reasoning_effort", choices=("minimal", "low", "medium", "high")
        ),
    }
    # Modify changes only what the body names; a field sent as null is reset.
    return {k: v for k, v in read.items() if creating or k in body.data}


def _public(assistant: JSON) -> JSON:
    """The AssistantObject answered: the record without what only runs read
    (`reasoning_effort`, which the spec's object does not carry)."""
    return {k: v for k, v in assistant.items() if k != "reasoning_effort"}


async def _assistant(assistant_id: str) -> JSON:
    return found(await store().get_assistant(assistant_id), "assistant", assistant_id)


@handles(bp, "createAssistant")
async def create() -> JSON:
    read = _read(await json_body(_FIELDS), creating=True)
    await settle_tool_resources(read["tool_resources"], "tool_resources")
    assistant = {
        "id": new_id(ASSISTANT),
        "object": "assistant",
        "created_at": now(),
        "name": read["name"],
        "description": read["description"],
        "model": read["model"],
        "instructions": read["instructions"],
        "tools": read["tools"] or [],
        "tool_resources": read["tool_resources"] or {},
        "metadata": read["metadata"] or {},
        "temperature": 1.0 if read["temperature"] is None else read["temperature"],
        "top_p": 1.0 if read["top_p"] is None else read["top_p"],
        "response_format": read["response_format"] or "auto",
        "reasoning_effort": read["reasoning_effort"],
    }
    await store().create_assistant(assistant)
    return _public(assistant)


@handles(bp, "listAssistants")
async def list_assistants() -> JSON:
    data, has_more = await store().list_assistants(parse_page(request.args))
    return list_body([_public(a) for a in data], has_more)


@handles(bp, "getAssistant")
async def retrieve(assistant_id: str) -> JSON:
    return _public(await _assistant(assistant_id))


@handles(bp, "modifyAssistant")
async def modify(assistant_id: str) -> JSON:
    read = _read(await json_body(_FIELDS), creating=False)
    assistant = await _assistant(assistant_id)
    await settle_tool_resources(read.get("tool_resources"), "tool_resources")
    defaults: dict[str, Any] = {
        "tools": [],
        "tool_resources": {},
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "response_format": "auto",
    }
    for name, value in read.items():
        if name == "model" and value is None:
            continue  # an assistant always has a model
        assistant[name] = defaults.get(name) if value is None else value
    await store().put_assistant(assistant)
    return _public(assistant)


@handles(bp, "deleteAssistant")
async def delete(assistant_id: str) -> JSON:
    if not await store().delete_assistant(assistant_id):
        raise not_found("assistant", assistant_id)
    return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}
