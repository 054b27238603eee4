"""Assistants, and the configuration readers that runs share with them (tools, tool
resources, sampling, response format)."""

from typing import Any

from quart import Blueprint, request

from . import vector_stores
from .errors import file_not_found
from .store import JSON, Store, list_page, new_id, now
from .web import Fields, json_body, store

bp = Blueprint("assistants", __name__, url_prefix="/v1/assistants")

TOOL_TYPES = ("code_interpreter", "file_search", "function")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_FIELDS = (
    "model",
    "name",
    "description",
    "instructions",
    "reasoning_effort",
    "tools",
    "tool_resources",
    "metadata",
    "temperature",
    "top_p",
    "response_format",
)


def read_tools(fields: Fields, *, max_items: int = 128) -> list[JSON] | None:
    raw = fields.array("tools", max_items=max_items)
    if raw is None:
        return None
    for i, item in enumerate(raw):
        tool = Fields.of(item, f"{fields.param('tools')}[{i}]")
        kind = tool.required_string("type", choices=TOOL_TYPES)
        if kind == "function":
            function = tool.required_object("function")
            function.required_string("name", max_length=64)
            function.string("description")
            function.object("parameters")
            function.boolean("strict")
        elif kind == "file_search" and (options := tool.object("file_search")):
            options.integer("max_num_results", minimum=1, maximum=50)
    return raw


def read_tool_resources(fields: Fields, state: Store) -> JSON | None:
    """Checks that every referenced file and vector store exists; the `vector_stores`
    helper creates the store it describes, so call this after all other validation."""
    resources = fields.object("tool_resources")
    if resources is None:
        return None
    result: JSON = {}
    if code := resources.object("code_interpreter"):
        file_ids = code.strings("file_ids", max_items=20) or []
        for file_id in file_ids:
            if file_id not in state.files:
                raise file_not_found(file_id, code.param("file_ids"))
        result["code_interpreter"] = {"file_ids": file_ids}
    if file_search := resources.object("file_search"):
        store_ids = file_search.strings("vector_store_ids", max_items=1) or []
        for vector_store_id in store_ids:
            state.vector_store(vector_store_id)
        for i, raw in enumerate(file_search.array("vector_stores", max_items=1) or []):
            helper = Fields.of(raw, f"{file_search.param('vector_stores')}[{i}]")
            helper.only(("file_ids", "chunking_strategy", "metadata"))
            created = vector_stores.create_vector_store(
                state,
                name="",
                file_ids=helper.strings("file_ids") or [],
                metadata=helper.metadata(),
                chunking=vector_stores.read_chunking(helper),
            )
            store_ids.append(created["id"])
        result["file_search"] = {"vector_store_ids": store_ids}
    return result


def read_response_format(fields: Fields) -> Any:
    value = fields.data.get("response_format")
    if value is None or value == "auto":
        return value
    response_format = Fields.of(value, fields.param("response_format"))
    kind = response_format.required_string("type", choices=("text", "json_object", "json_schema"))
    if kind == "json_schema":
        response_format.required_object("json_schema").required_string("name")
    return value


def read_sampling(fields: Fields) -> tuple[float | None, float | None]:
    return (
        fields.number("temperature", minimum=0, maximum=2),
        fields.number("top_p", minimum=0, maximum=1),
    )


@bp.get("")
async def list_assistants() -> JSON:
    return list_page(list(store().assistants.values()), request.args)


@bp.post("")
async def create() -> JSON:
    body = await json_body(_FIELDS)
    state = store()
    model = body.required_string("model")
    temperature, top_p = read_sampling(body)
    assistant = {
        "id": new_id("asst_"),
        "object": "assistant",
        "created_at": now(),
        "name": body.string("name", max_length=256),
        "description": body.string("description", max_length=512),
        "model": model,
        "instructions": body.string("instructions", max_length=256000),
        "tools": read_tools(body) or [],
        "metadata": body.metadata() or {},
        "temperature": 1.0 if temperature is None else temperature,
        "top_p": 1.0 if top_p is None else top_p,
        "response_format": read_response_format(body) or "auto",
        "reasoning_effort": body.string("reasoning_effort", choices=REASONING_EFFORTS),
    }
    assistant["tool_resources"] = read_tool_resources(body, state) or {}
    state.assistants[assistant["id"]] = assistant
    return assistant


@bp.get("/<assistant_id>")
async def retrieve(assistant_id: str) -> JSON:
    return store().assistant(assistant_id)


@bp.post("/<assistant_id>")
async def modify(assistant_id: str) -> JSON:
    state = store()
    assistant = state.assistant(assistant_id)
    body = await json_body(_FIELDS)
    changes: JSON = {}
    if body.has("model"):
        changes["model"] = body.required_string("model")
    for name, max_length in (("name", 256), ("description", 512), ("instructions", 256000)):
        if body.has(name):
            changes[name] = body.string(name, max_length=max_length)
    if body.has("reasoning_effort"):
        changes["reasoning_effort"] = body.string("reasoning_effort", choices=REASONING_EFFORTS)
    if body.has("tools"):
        changes["tools"] = read_tools(body) or []
    if body.has("metadata"):
        changes["metadata"] = body.metadata() or {}
    temperature, top_p = read_sampling(body)
    if body.has("temperature"):
        changes["temperature"] = 1.0 if temperature is None else temperature
    if body.has("top_p"):
        changes["top_p"] = 1.0 if top_p is None else top_p
    if body.has("response_format"):
        changes["response_format"] = read_response_format(body) or "auto"
    if body.has("tool_resources"):
        changes["tool_resources"] = read_tool_resources(body, state) or {}
    assistant.update(changes)
    return assistant


@bp.delete("/<assistant_id>")
async def delete(assistant_id: str) -> JSON:
    state = store()
    state.assistant(assistant_id)
    del state.assistants[assistant_id]
    return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}
