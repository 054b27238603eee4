"""Vector stores, their files and file batches, and search over them (engine/vector_stores.py
keeps them and indexes the files)."""

from typing import Any

from quart import Blueprint, current_app, request

from ..errors import ApiError, file_not_found, found, not_found
from ..ids import VECTOR_STORE, new_id, now
from ..pagination import list_body, parse_page
from ..retrieval.chunking import ChunkingStrategy, chunking_strategy
from ..retrieval.errors import ParamError
from ..store import JSON
from ..vector_store_filters import check_filter
from ..vector_stores import FILE_STATUSES, VectorStores
from .fields import Fields, expect, invalid_value, json_body, missing, store
from .handlers import handles

VECTOR_STORES = "engine.vector_stores"
# The search endpoint's default, which differs from the file_search tool's.
SEARCH_DEFAULT_RESULTS = 10

bp = Blueprint("vector_stores", __name__)


def vector_stores() -> VectorStores:
    return current_app.extensions[VECTOR_STORES]


def _param_error(error: ParamError) -> ApiError:
    return ApiError(400, error.message, param=error.param, code="invalid_value")


def read_chunking_strategy(fields: Fields, name: str = "chunking_strategy") -> ChunkingStrategy:
    try:
        return chunking_strategy(fields.data.get(name), fields.param(name))
    except ParamError as error:
        raise _param_error(error) from None


def _expires_after(fields: Fields) -> JSON | None:
    policy = fields.object("expires_after")
    if policy is None:
        return None
    policy.only(("anchor", "days"))
    anchor = policy.required_string("anchor", choices=("last_active_at",))
    days = policy.data.get("days")
    if days is None:
        raise missing("expires_after.days")
    expect(days, int, "expires_after.days")
    if not 1 <= days <= 365:
        raise ApiError(
            400,
            f"Invalid 'expires_after.days': integer must be between 1 and 365, but got {days}.",
            param="expires_after.days",
            code="invalid_value",
        )
    return {"anchor": anchor, "days": days}


def _attributes(fields: Fields, name: str = "attributes") -> dict[str, Any] | None:
    """Up to 16 pairs; keys up to 64 characters, values strings (up to 512), numbers or
    booleans."""
    attributes = fields.object(name)
    if attributes is None:
        return None
    param = attributes.prefix
    if len(attributes.data) > 16:
        raise ApiError(
            400,
            f"Invalid '{param}': too many properties. Expected an object with at most 16 "
            f"properties, but got an object with {len(attributes.data)} properties instead.",
            param=param,
            code="object_above_max_properties",
        )
    for key, value in attributes.data.items():
        if len(key) > 64:
            raise ApiError(
                400,
                f"Invalid '{param}': keys can be at most 64 characters, but got a key with "
                f"length {len(key)}.",
                param=param,
                code="invalid_value",
            )
        if isinstance(value, str):
            attributes.string(key, max_length=512)
        elif not isinstance(value, int | float | bool):
            raise ApiError(
                400,
                f"Invalid type for '{param}.{key}': expected a string, a number or a boolean.",
                param=f"{param}.{key}",
                code="invalid_type",
            )
    return dict(attributes.data)


async def require_files(file_ids: list[str], param: str) -> None:
    """The 404 of the first of the ids that is not a stored file, naming `param`."""
    missing = await store().missing_file(file_ids)
    if missing is not None:
        raise file_not_found(missing, param)


async def _record(vector_store_id: str) -> JSON:
    return found(await vector_stores().get_record(vector_store_id), "vector store", vector_store_id)


async def _answer(vector_store_id: str) -> JSON:
    return found(await vector_stores().get(vector_store_id), "vector store", vector_store_id)


# Vector stores


@handles(bp, "createVectorStore")
async def create() -> JSON:
    fields = await json_body(
        ("file_ids", "name", "description", "expires_after", "chunking_strategy", "metadata")
    )
    file_ids = fields.strings("file_ids", max_items=500) or []
    name = fields.string("name", max_length=256)
    # The spec takes a description but VectorStoreObject has no field to show it: checked,
    # then not kept.
    fields.string("description", max_length=512)
    expires_after = _expires_after(fields)
    strategy = read_chunking_strategy(fields)
    metadata = fields.metadata() or {}
    vector_store_id = await create_store(
        file_ids,
        strategy,
        files_param="file_ids",
        name=name or "",
        metadata=metadata,
        expires_after=expires_after,
    )
    return await _answer(vector_store_id)


async def create_store(
    file_ids: list[str],
    strategy: ChunkingStrategy,
    *,
    files_param: str,
    name: str = "",
    metadata: JSON | None = None,
    expires_after: JSON | None = None,
) -> str:
    """Makes a vector store and starts indexing its files, for POST /vector_stores and for
    tool_resources' `vector_stores` helper. Raises for a file that does not exist."""
    await require_files(file_ids, files_param)
    created = now()
    record: JSON = {
        "id": new_id(VECTOR_STORE),
        "object": "vector_store",
        "created_at": created,
        "name": name,
        "last_active_at": created,
        "metadata": metadata or {},
        "expires_at": None,
    }
    if expires_after is not None:
        record["expires_after"] = expires_after
        record["expires_at"] = created + expires_after["days"] * 86400
    await vector_stores().create(record)
    if file_ids:
        count = len(file_ids)
        await vector_stores().add_files(record["id"], file_ids, [strategy] * count, [None] * count)
    return record["id"]


@handles(bp, "listVectorStores")
async def list_vector_stores() -> JSON:
    page = parse_page(request.args)
    return list_body(*await vector_stores().list_stores(page))


@handles(bp, "getVectorStore")
async def retrieve(vector_store_id: str) -> JSON:
    return await _answer(vector_store_id)


@handles(bp, "modifyVectorStore")
async def modify(vector_store_id: str) -> JSON:
    fields = await json_body(("name", "expires_after", "metadata"))
    record = await _record(vector_store_id)
    if fields.has("name"):
        record["name"] = fields.string("name", max_length=256) or ""
    if fields.has("expires_after"):
        expires_after = _expires_after(fields)
        record.pop("expires_after", None)
        record["expires_at"] = None
        if expires_after is not None:
            record["expires_after"] = expires_after
            record["expires_at"] = record["last_active_at"] + expires_after["days"] * 86400
    if fields.has("metadata"):
        record["metadata"] = fields.metadata() or {}
    await vector_stores().put_record(record)
    return await _answer(vector_store_id)


@handles(bp, "deleteVectorStore")
async def delete(vector_store_id: str) -> JSON:
    if not await vector_stores().delete(vector_store_id):
        raise not_found("vector store", vector_store_id)
    return {"id": vector_store_id, "object": "vector_store.deleted", "deleted": True}


# Vector store files


async def _file(vector_store_id: str, file_id: str) -> JSON:
    return found(
        await vector_stores().get_file(vector_store_id, file_id), "vector store file", file_id
    )


@handles(bp, "createVectorStoreFile")
async def create_file(vector_store_id: str) -> JSON:
    fields = await json_body(("file_id", "chunking_strategy", "attributes"))
    file_id = fields.required_string("file_id")
    strategy = read_chunking_strategy(fields)
    attributes = _attributes(fields)
    await _record(vector_store_id)
    await require_files([file_id], "file_id")
    [record] = await vector_stores().add_files(vector_store_id, [file_id], [strategy], [attributes])
    return record


def _status_filter() -> str | None:
    status = request.args.get("filter") or None
    if status is not None and status not in FILE_STATUSES:
        raise invalid_value("filter", status, FILE_STATUSES)
    return status


@handles(bp, "listVectorStoreFiles")
async def list_files(vector_store_id: str) -> JSON:
    page = parse_page(request.args)
    status = _status_filter()
    await _record(vector_store_id)
    return list_body(*await vector_stores().list_files(vector_store_id, page, status))


@handles(bp, "getVectorStoreFile")
async def retrieve_file(vector_store_id: str, file_id: str) -> JSON:
    await _record(vector_store_id)
    return await _file(vector_store_id, file_id)


@handles(bp, "updateVectorStoreFileAttributes")
async def update_file(vector_store_id: str, file_id: str) -> JSON:
    fields = await json_body(("attributes",))
    if not fields.has("attributes"):
        raise missing("attributes")
    attributes = _attributes(fields) or {}
    await _record(vector_store_id)
    return found(
        await vector_stores().set_attributes(vector_store_id, file_id, attributes),
        "vector store file",
        file_id,
    )


@handles(bp, "deleteVectorStoreFile")
async def delete_file(vector_store_id: str, file_id: str) -> JSON:
    await _record(vector_store_id)
    if not await vector_stores().remove_file(vector_store_id, file_id):
        raise not_found("vector store file", file_id)
    return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}


@handles(bp, "retrieveVectorStoreFileContent")
async def file_content(vector_store_id: str, file_id: str) -> JSON:
    await _record(vector_store_id)
    await _file(vector_store_id, file_id)
    chunks = await vector_stores().file_chunks(vector_store_id, file_id)
    return {
        "object": "vector_store.file_content.page",
        "data": [{"type": "text", "text": item.text} for item in chunks],
        "has_more": False,
        "next_page": None,
    }


# File batches


@handles(bp, "createVectorStoreFileBatch")
async def create_batch(vector_store_id: str) -> JSON:
    fields = await json_body(("file_ids", "files", "chunking_strategy", "attributes"))
    if fields.has("file_ids") and fields.has("files"):
        raise ApiError(
            400,
            "Invalid request: 'file_ids' and 'files' are mutually exclusive.",
            param="files",
            code="invalid_value",
        )
    strategies: list[ChunkingStrategy]
    attributes: list[dict[str, Any] | None]
    if fields.has("files"):
        items = fields.items("files", min_items=1, max_items=2000) or []
        file_ids = []
        strategies, attributes = [], []
        for item in items:
            item.only(("file_id", "chunking_strategy", "attributes"))
            file_ids.append(item.required_string("file_id"))
            strategies.append(read_chunking_strategy(item))
            attributes.append(_attributes(item))
    else:
        file_ids = fields.strings("file_ids", max_items=2000) or []
        if not file_ids:
            raise missing("file_ids")
        strategies = [read_chunking_strategy(fields)] * len(file_ids)
        attributes = [_attributes(fields)] * len(file_ids)
    await _record(vector_store_id)
    await require_files(file_ids, "files" if fields.has("files") else "file_ids")
    return await vector_stores().create_batch(vector_store_id, file_ids, strategies, attributes)


# How a batch is named in its 404 (found()).
_BATCH = "vector store file batch"


async def _batch(vector_store_id: str, batch_id: str) -> JSON:
    await _record(vector_store_id)
    return found(await vector_stores().get_batch(vector_store_id, batch_id), _BATCH, batch_id)


@handles(bp, "getVectorStoreFileBatch")
async def retrieve_batch(vector_store_id: str, batch_id: str) -> JSON:
    return await _batch(vector_store_id, batch_id)


@handles(bp, "cancelVectorStoreFileBatch")
async def cancel_batch(vector_store_id: str, batch_id: str) -> JSON:
    await _batch(vector_store_id, batch_id)
    return found(await vector_stores().cancel_batch(vector_store_id, batch_id), _BATCH, batch_id)


@handles(bp, "listFilesInVectorStoreBatch")
async def list_batch_files(vector_store_id: str, batch_id: str) -> JSON:
    page = parse_page(request.args)
    status = _status_filter()
    await _batch(vector_store_id, batch_id)
    return list_body(*await vector_stores().list_files(vector_store_id, page, status, batch_id))


# Search


@handles(bp, "searchVectorStore")
async def search(vector_store_id: str) -> JSON:
    fields = await json_body(
        ("query", "rewrite_query", "max_num_results", "filters", "ranking_options")
    )
    query = fields.data.get("query")
    if query is None:
        raise missing("query")
    queries = [query] if isinstance(query, str) else query
    # rewrite_query asks a model to rephrase the query; the lexical index searches as given.
    if fields.has("rewrite_query"):
        expect(fields.data["rewrite_query"], bool, "rewrite_query")
    max_results = fields.data.get("max_num_results", SEARCH_DEFAULT_RESULTS)
    ranking = fields.object("ranking_options")
    ranker, threshold = "auto", 0.0
    if ranking is not None:
        ranking.only(("ranker", "score_threshold"))
        ranker = ranking.string("ranker") or "auto"
        threshold = ranking.number("score_threshold", minimum=0, maximum=1) or 0.0
    filters = fields.data.get("filters")
    record = await _record(vector_store_id)
    try:
        if filters is not None:
            check_filter(filters)
        hits = await vector_stores().search(
            [vector_store_id],
            query,
            max_num_results=max_results,
            ranker=ranker,
            score_threshold=threshold,
            filters=filters,
        )
    except ParamError as error:
        raise _param_error(error) from None
    await vector_stores().touch(record)
    return {
        "object": "vector_store.search_results.page",
        "search_query": queries,
        "data": [
            {
                "file_id": hit.file_id,
                "filename": hit.filename,
                "score": hit.score,
                "attributes": hit.attributes,
                "content": [{"type": "text", "text": hit.text}],
            }
            for hit in hits
        ],
        "has_more": False,
        "next_page": None,
    }
