"""Vector stores, their files and file batches, and search. Files are "processed" the
moment they are attached, so every status is `completed` at once and the SDK's
create_and_poll helpers return after their first request. A store's usage_bytes is the
sum of its files' sizes, unless its metadata sets `usage_bytes` (digits), which it then
reports: tests claim gigabytes without uploading them."""

from typing import Any

from quart import Blueprint, request

from . import search
from .errors import ApiError, file_not_found, not_found
from .store import JSON, Store, list_page, new_id, now
from .web import Fields, expect, json_body, missing, store

bp = Blueprint("vector_stores", __name__, url_prefix="/v1/vector_stores")

FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")
_DEFAULT_CHUNKING = {
    "type": "static",
    "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
}
_COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")


def create_vector_store(
    state: Store,
    *,
    name: str,
    file_ids: list[str],
    metadata: dict[str, str] | None = None,
    expires_after: JSON | None = None,
    chunking: JSON | None = None,
) -> JSON:
    for file_id in file_ids:
        if file_id not in state.files:
            raise file_not_found(file_id, "file_ids")
    created = now()
    vector_store = {
        "id": new_id("vs_"),
        "object": "vector_store",
        "created_at": created,
        "name": name,
        "usage_bytes": 0,
        "file_counts": {},
        "status": "completed",
        "expires_after": expires_after,
        "expires_at": created + expires_after["days"] * 86400 if expires_after else None,
        "last_active_at": created,
        "metadata": metadata or {},
    }
    state.vector_stores[vector_store["id"]] = vector_store
    state.vector_store_files[vector_store["id"]] = {}
    for file_id in file_ids:
        attach_file(state, vector_store, file_id, attributes=None, chunking=chunking)
    _recount(state, vector_store)
    return vector_store


def attach_file(
    state: Store,
    vector_store: JSON,
    file_id: str,
    *,
    attributes: JSON | None,
    chunking: JSON | None,
) -> JSON:
    file = state.files.get(file_id)
    if file is None:
        raise file_not_found(file_id)
    attached = state.vector_store_files[vector_store["id"]]
    if file_id not in attached:
        attached[file_id] = {
            "id": file_id,
            "object": "vector_store.file",
            "usage_bytes": file["bytes"],
            "created_at": now(),
            "vector_store_id": vector_store["id"],
            "status": "completed",
            "last_error": None,
            "chunking_strategy": chunking or _DEFAULT_CHUNKING,
            "attributes": attributes or {},
        }
        _recount(state, vector_store)
    return attached[file_id]


def detach_everywhere(state: Store, file_id: str) -> None:
    """Deleting a file removes it from every vector store, as OpenAI does."""
    for vector_store_id, attached in state.vector_store_files.items():
        if attached.pop(file_id, None) is not None:
            _recount(state, state.vector_stores[vector_store_id])


def _recount(state: Store, vector_store: JSON) -> None:
    attached = state.vector_store_files[vector_store["id"]].values()
    claimed = str(vector_store["metadata"].get("usage_bytes", ""))
    vector_store["usage_bytes"] = (
        int(claimed) if claimed.isdigit() else sum(file["usage_bytes"] for file in attached)
    )
    vector_store["file_counts"] = {
        "in_progress": 0,
        "completed": len(attached),
        "failed": 0,
        "cancelled": 0,
        "total": len(attached),
    }
    vector_store["last_active_at"] = now()


def _attached(state: Store, vector_store_id: str, file_id: str) -> JSON:
    state.vector_store(vector_store_id)
    file = state.vector_store_files[vector_store_id].get(file_id)
    if file is None:
        raise not_found("vector store file", file_id)
    return file


def read_chunking(fields: Fields) -> JSON | None:
    strategy = fields.object("chunking_strategy")
    if strategy is None:
        return None
    if strategy.required_string("type", choices=("auto", "static")) == "auto":
        return _DEFAULT_CHUNKING
    static = strategy.required_object("static")
    size = static.integer("max_chunk_size_tokens", minimum=100, maximum=4096)
    overlap = static.integer("chunk_overlap_tokens", minimum=0)
    if size is None or overlap is None:
        name = "max_chunk_size_tokens" if size is None else "chunk_overlap_tokens"
        raise missing(static.param(name))
    return {
        "type": "static",
        "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap},
    }


def _attributes(fields: Fields) -> JSON | None:
    attributes = fields.object("attributes")
    if attributes is None:
        return None
    if len(attributes.data) > 16:
        raise ApiError(400, "Invalid 'attributes': at most 16 properties.", param="attributes")
    for key, value in attributes.data.items():
        if len(key) > 64 or not isinstance(value, str | int | float | bool):
            raise ApiError(
                400,
                f"Invalid 'attributes.{key[:64]}': keys are at most 64 characters and values "
                "are strings, numbers or booleans.",
                param=attributes.param(key[:64]),
            )
        if isinstance(value, str):
            attributes.string(key, max_length=512)
    return dict(attributes.data)


def _expires_after(fields: Fields) -> JSON | None:
    expires = fields.object("expires_after")
    if expires is None:
        return None
    anchor = expires.required_string("anchor", choices=("last_active_at",))
    days = expires.integer("days", minimum=1, maximum=365)
    if days is None:
        raise missing(expires.param("days"))
    return {"anchor": anchor, "days": days}


def _status_filter() -> str | None:
    status = request.args.get("filter")
    if status is not None and status not in FILE_STATUSES:
        raise ApiError(
            400,
            f"Invalid 'filter': expected one of {', '.join(FILE_STATUSES)}, got '{status}'.",
            param="filter",
        )
    return status


def _file_list(files: list[JSON]) -> JSON:
    status = _status_filter()
    return list_page([f for f in files if status in (None, f["status"])], request.args)


@bp.get("")
async def list_vector_stores() -> JSON:
    return list_page(list(store().vector_stores.values()), request.args)


@bp.post("")
async def create() -> JSON:
    body = await json_body(("file_ids", "name", "expires_after", "chunking_strategy", "metadata"))
    return create_vector_store(
        store(),
        name=body.string("name") or "",
        file_ids=body.strings("file_ids", max_items=500) or [],
        metadata=body.metadata(),
        expires_after=_expires_after(body),
        chunking=read_chunking(body),
    )


@bp.get("/<vector_store_id>")
async def retrieve(vector_store_id: str) -> JSON:
    return store().vector_store(vector_store_id)


@bp.post("/<vector_store_id>")
async def modify(vector_store_id: str) -> JSON:
    vector_store = store().vector_store(vector_store_id)
    body = await json_body(("name", "expires_after", "metadata"))
    if body.has("name"):
        vector_store["name"] = body.string("name") or ""
    if body.has("expires_after"):
        expires_after = _expires_after(body)
        vector_store["expires_after"] = expires_after
        vector_store["expires_at"] = (
            vector_store["last_active_at"] + expires_after["days"] * 86400
            if expires_after
            else None
        )
    if body.has("metadata"):
        vector_store["metadata"] = body.metadata() or {}
        _recount(store(), vector_store)
    return vector_store


@bp.delete("/<vector_store_id>")
async def delete(vector_store_id: str) -> JSON:
    state = store()
    state.vector_store(vector_store_id)
    del state.vector_stores[vector_store_id]
    del state.vector_store_files[vector_store_id]
    for batch_id in [
        b for b, batch in state.batches.items() if batch["vector_store_id"] == vector_store_id
    ]:
        del state.batches[batch_id]
        del state.batch_file_ids[batch_id]
    return {"id": vector_store_id, "object": "vector_store.deleted", "deleted": True}


@bp.get("/<vector_store_id>/files")
async def list_files(vector_store_id: str) -> JSON:
    state = store()
    state.vector_store(vector_store_id)
    return _file_list(list(state.vector_store_files[vector_store_id].values()))


@bp.post("/<vector_store_id>/files")
async def create_file(vector_store_id: str) -> JSON:
    state = store()
    vector_store = state.vector_store(vector_store_id)
    body = await json_body(("file_id", "attributes", "chunking_strategy"))
    file_id = body.required_string("file_id")
    return attach_file(
        state, vector_store, file_id, attributes=_attributes(body), chunking=read_chunking(body)
    )


@bp.get("/<vector_store_id>/files/<file_id>")
async def retrieve_file(vector_store_id: str, file_id: str) -> JSON:
    return _attached(store(), vector_store_id, file_id)


@bp.post("/<vector_store_id>/files/<file_id>")
async def update_file_attributes(vector_store_id: str, file_id: str) -> JSON:
    file = _attached(store(), vector_store_id, file_id)
    body = await json_body(("attributes",))
    if not body.has("attributes"):
        raise missing("attributes")
    file["attributes"] = _attributes(body) or {}
    return file


@bp.delete("/<vector_store_id>/files/<file_id>")
async def delete_file(vector_store_id: str, file_id: str) -> JSON:
    state = store()
    _attached(state, vector_store_id, file_id)
    del state.vector_store_files[vector_store_id][file_id]
    _recount(state, state.vector_stores[vector_store_id])
    return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}


@bp.get("/<vector_store_id>/files/<file_id>/content")
async def file_content(vector_store_id: str, file_id: str) -> JSON:
    state = store()
    _attached(state, vector_store_id, file_id)
    text = search.indexed_text(state.file_path(file_id))
    return {
        "object": "vector_store.file_content.page",
        "data": [{"type": "text", "text": text}],
        "has_more": False,
        "next_page": None,
    }


@bp.post("/<vector_store_id>/file_batches")
async def create_batch(vector_store_id: str) -> JSON:
    state = store()
    vector_store = state.vector_store(vector_store_id)
    body = await json_body(("file_ids", "files", "chunking_strategy", "attributes"))
    chunking, attributes = read_chunking(body), _attributes(body)
    requested: list[tuple[str, JSON | None, JSON | None]] = [
        (file_id, attributes, chunking)
        for file_id in body.strings("file_ids", min_items=1, max_items=2000) or []
    ]
    for i, raw in enumerate(body.array("files", min_items=1, max_items=2000) or []):
        entry = Fields.of(raw, f"files[{i}]").only(("file_id", "attributes", "chunking_strategy"))
        file_id = entry.required_string("file_id")
        requested.append((file_id, _attributes(entry), read_chunking(entry)))
    if not requested:
        raise missing("file_ids")
    for file_id, _, _ in requested:
        if file_id not in state.files:
            raise file_not_found(file_id, "file_ids")
    for file_id, file_attributes, file_chunking in requested:
        attach_file(
            state, vector_store, file_id, attributes=file_attributes, chunking=file_chunking
        )
    file_ids = list(dict.fromkeys(file_id for file_id, _, _ in requested))
    batch = {
        "id": new_id("vsfb_"),
        "object": "vector_store.files_batch",
        "created_at": now(),
        "vector_store_id": vector_store_id,
        "status": "completed",
        "file_counts": {
            "in_progress": 0,
            "completed": len(file_ids),
            "failed": 0,
            "cancelled": 0,
            "total": len(file_ids),
        },
    }
    state.batches[batch["id"]] = batch
    state.batch_file_ids[batch["id"]] = file_ids
    return batch


def _batch(state: Store, vector_store_id: str, batch_id: str) -> JSON:
    state.vector_store(vector_store_id)
    batch = state.batches.get(batch_id)
    if batch is None or batch["vector_store_id"] != vector_store_id:
        raise not_found("file batch", batch_id)
    return batch


@bp.get("/<vector_store_id>/file_batches/<batch_id>")
async def retrieve_batch(vector_store_id: str, batch_id: str) -> JSON:
    return _batch(store(), vector_store_id, batch_id)


@bp.post("/<vector_store_id>/file_batches/<batch_id>/cancel")
async def cancel_batch(vector_store_id: str, batch_id: str) -> JSON:
    batch = _batch(store(), vector_store_id, batch_id)
    # Batches finish as they are created, so there is never one left to cancel.
    raise ApiError(400, f"Cannot cancel file batch {batch_id}: its status is '{batch['status']}'.")


@bp.get("/<vector_store_id>/file_batches/<batch_id>/files")
async def list_batch_files(vector_store_id: str, batch_id: str) -> JSON:
    state = store()
    _batch(state, vector_store_id, batch_id)
    attached = state.vector_store_files[vector_store_id]
    files = [attached[f] for f in state.batch_file_ids[batch_id] if f in attached]
    return _file_list(files)


@bp.post("/<vector_store_id>/search")
async def search_vector_store(vector_store_id: str) -> JSON:
    state = store()
    state.vector_store(vector_store_id)
    body = await json_body(
        ("query", "rewrite_query", "max_num_results", "filters", "ranking_options")
    )
    if body.data.get("query") is None:
        raise missing("query")
    raw_query = body.data["query"]
    queries = [raw_query] if isinstance(raw_query, str) else body.strings("query", min_items=1)
    assert queries is not None
    body.boolean("rewrite_query")
    max_results = body.integer("max_num_results", minimum=1, maximum=50) or 10
    threshold = 0.0
    if ranking := body.object("ranking_options"):
        ranking.only(("ranker", "score_threshold"))
        ranking.string("ranker", choices=("none", "auto", "default-2024-11-15"))
        threshold = ranking.number("score_threshold", minimum=0, maximum=1) or 0.0
    filters = body.object("filters")
    # Checked against no attributes first so a malformed filter is a 400 even when the
    # store has no files to apply it to.
    if filters is not None:
        _matches(filters, {})
    attached = state.vector_store_files[vector_store_id]
    eligible = [
        file_id
        for file_id, file in attached.items()
        if filters is None or _matches(filters, file["attributes"] or {})
    ]
    hits = [h for h in search.rank(state, eligible, " ".join(queries)) if h.score >= threshold]
    return {
        "object": "vector_store.search_results.page",
        "search_query": queries,
        "data": [
            {
                "file_id": hit.file_id,
                "filename": hit.filename,
                "score": hit.score,
                "attributes": attached[hit.file_id]["attributes"],
                "content": [{"type": "text", "text": hit.text}],
            }
            for hit in hits[:max_results]
        ],
        "has_more": False,
        "next_page": None,
    }


def _matches(filter_: Fields, attributes: JSON) -> bool:
    kind = filter_.required_string("type", choices=(*_COMPARISONS, "and", "or"))
    if kind in ("and", "or"):
        parts = filter_.array("filters", required=True) or []
        results = [
            _matches(Fields.of(part, f"{filter_.param('filters')}[{i}]"), attributes)
            for i, part in enumerate(parts)
        ]
        return all(results) if kind == "and" else any(results)
    key = filter_.required_string("key")
    if "value" not in filter_.data:
        raise missing(filter_.param("value"))
    expected = filter_.data["value"]
    actual = attributes.get(key)
    if kind in ("in", "nin"):
        expect(expected, list, filter_.param("value"))
        return (actual in expected) == (kind == "in")
    if kind in ("eq", "ne"):
        return (actual == expected) == (kind == "eq")
    return _ordered(kind, actual, expected)


def _ordered(kind: str, actual: Any, expected: Any) -> bool:
    comparable = (isinstance(actual, int | float) and isinstance(expected, int | float)) or (
        isinstance(actual, str) and isinstance(expected, str)
    )
    if not comparable:
        return False
    return {
        "gt": actual > expected,
        "gte": actual >= expected,
        "lt": actual < expected,
        "lte": actual <= expected,
    }[kind]
