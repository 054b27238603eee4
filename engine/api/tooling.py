"""Fields assistants and threads share: tools, tool_resources and response_format, read into
the objects' shapes as the spec defines them."""

from dataclasses import dataclass
from typing import Any

from ..errors import ApiError
from ..retrieval.chunking import ChunkingStrategy
from .fields import Fields, expect, invalid_value
from .vector_stores import create_store, read_chunking_strategy, require_files, vector_stores

TOOL_TYPES = ("code_interpreter", "file_search", "function")
# OpenAI's defaults for a file_search tool given without options.
_RANKING_DEFAULTS = {"ranker": "default_2024_08_21", "score_threshold": 0.0}


def tools(body: Fields) -> list[dict[str, Any]] | None:
    items = body.items("tools", max_items=128)
    return None if items is None else [_tool(item) for item in items]


def _tool(tool: Fields) -> dict[str, Any]:
    kind = tool.required_string("type", choices=TOOL_TYPES)
    if kind == "code_interpreter":
        tool.only(("type",))
        return {"type": kind}
    if kind == "file_search":
        tool.only(("type", "file_search"))
        options = tool.object("file_search") or Fields({}, tool.param("file_search"))
        options.only(("max_num_results", "ranking_options"))
        max_results = options.data.get("max_num_results")
        if max_results is not None:
            expect(max_results, int, options.param("max_num_results"))
            if not 1 <= max_results <= 50:
                raise ApiError(
                    400,
                    f"Invalid '{options.param('max_num_results')}': integer must be between "
                    f"1 and 50, but got {max_results} instead.",
                    param=options.param("max_num_results"),
                    code="invalid_value",
                )
        ranking = options.object("ranking_options")
        settings: dict[str, Any] = {"ranking_options": dict(_RANKING_DEFAULTS)}
        if ranking is not None:
            ranking.only(("ranker", "score_threshold"))
            ranker = ranking.string("ranker", choices=("auto", "default_2024_08_21"))
            threshold = ranking.number("score_threshold", minimum=0, maximum=1)
            settings["ranking_options"] = {
                "ranker": ranker or "default_2024_08_21",
                "score_threshold": 0.0 if threshold is None else threshold,
            }
        if max_results is not None:
            settings["max_num_results"] = max_results
        return {"type": kind, "file_search": settings}
    tool.only(("type", "function"))
    function = tool.required_object("function")
    function.only(("name", "description", "parameters", "strict"))
    name = function.required_string("name", max_length=64)
    if not all(c.isascii() and (c.isalnum() or c in "_-") for c in name):
        raise ApiError(
            400,
            f"Invalid '{function.param('name')}': string does not match pattern. Expected a "
            f"string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
            param=function.param("name"),
            code="invalid_value",
        )
    described: dict[str, Any] = {"name": name}
    description = function.string("description")
    if description is not None:
        described["description"] = description
    parameters = function.object("parameters")
    described["parameters"] = parameters.data if parameters is not None else {}
    strict = function.data.get("strict")
    described["strict"] = (
        False if strict is None else expect(strict, bool, function.param("strict"))
    )
    return {"type": kind, "function": described}


@dataclass(frozen=True)
class NewVectorStore:
    """tool_resources' `file_search.vector_stores` helper, read: the store is made by
    settle_tool_resources once the whole request is valid."""

    file_ids: list[str]
    strategy: ChunkingStrategy
    metadata: dict[str, str] | None
    files_param: str


def tool_resources(body: Fields) -> dict[str, Any] | None:
    """`code_interpreter.file_ids` (20 at most) and `file_search.vector_store_ids` or the
    `vector_stores` helper (one store). Call settle_tool_resources on the result."""
    resources = body.object("tool_resources")
    if resources is None:
        return None
    resources.only(("code_interpreter", "file_search"))
    read: dict[str, Any] = {}
    code = resources.object("code_interpreter")
    if code is not None:
        code.only(("file_ids",))
        read["code_interpreter"] = {"file_ids": code.strings("file_ids", max_items=20) or []}
    search = resources.object("file_search")
    if search is not None:
        search.only(("vector_store_ids", "vector_stores"))
        ids = search.strings("vector_store_ids", max_items=1) or []
        helpers = [
            NewVectorStore(
                file_ids=helper.strings("file_ids", max_items=10_000) or [],
                strategy=read_chunking_strategy(helper),
                metadata=helper.metadata(),
                files_param=helper.param("file_ids"),
            )
            for helper in (
                item.only(("file_ids", "chunking_strategy", "metadata"))
                for item in search.items("vector_stores", max_items=1) or []
            )
        ]
        if ids and helpers:
            raise ApiError(
                400,
                "Only one of 'vector_store_ids' and 'vector_stores' can be given: file_search "
                "takes one vector store.",
                param=search.param("vector_stores"),
                code="invalid_value",
            )
        read["file_search"] = {"vector_store_ids": ids, "vector_stores": helpers}
    return read


async def settle_tool_resources(resources: dict[str, Any] | None, param: str) -> None:
    """Checks that every file and vector store `resources` (read by tool_resources; `param`
    names them) give the tools exists, as a run would otherwise go without them without
    saying so, and makes the store the `vector_stores` helper describes, in its place. Call
    it once the rest of the request is valid."""
    code = (resources or {}).get("code_interpreter")
    if code is not None:
        await require_files(code["file_ids"], f"{param}.code_interpreter.file_ids")
    search = (resources or {}).get("file_search")
    if search is None:
        return
    ids = search["vector_store_ids"]
    for vector_store_id in ids:
        if await vector_stores().get_record(vector_store_id) is None:
            raise ApiError(
                400,
                f"No vector store found with id '{vector_store_id}'.",
                param=f"{param}.file_search.vector_store_ids",
                code="invalid_value",
            )
    for new in search.pop("vector_stores"):
        ids.append(
            await create_store(
                new.file_ids, new.strategy, files_param=new.files_param, metadata=new.metadata
            )
        )


_FORMATS = ("text", "json_object", "json_schema")


def response_format(body: Fields) -> str | dict[str, Any] | None:
    value = body.data.get("response_format")
    if value is None or value == "auto":
        return value
    if isinstance(value, str):
        raise invalid_value(body.param("response_format"), value, ("auto",))
    fmt = Fields.of(value, body.param("response_format"))
    kind = fmt.required_string("type", choices=_FORMATS)
    if kind != "json_schema":
        fmt.only(("type",))
        return {"type": kind}
    fmt.only(("type", "json_schema"))
    schema = fmt.required_object("json_schema")
    schema.only(("name", "description", "schema", "strict"))
    schema.required_string("name", max_length=64)
    schema.string("description")
    schema.object("schema")
    if schema.data.get("strict") is not None:
        expect(schema.data["strict"], bool, schema.param("strict"))
    return {"type": kind, "json_schema": dict(schema.data)}
