"""Vector stores: their records and files in Redis, the indexing of each file, and search.

Records: a store's and a file batch's JSON leave out their counts (file_counts, usage_bytes,
status), which are counted from the files' records whenever one is read, so they can never
disagree. A vector store file's record is the spec's VectorStoreFileObject; a completed
file's chunks (and its filename, for search results) are JSON beside it.

Indexing: adding a file stores it `in_progress` and starts an asyncio task in this process
that parses the file's bytes, chunks them and stores the chunks, then marks it `completed`
(or `failed` with `last_error`). While it works the task holds an expiring lease key with a
token of its own, renewed as it goes; it saves its result only if it still holds that lease,
so a file cancelled, removed or added again meanwhile is not overwritten. A file found
`in_progress` with no lease was left by a process that died: reading it takes the lease and
indexes it again.

Search: the BM25 index of the searched stores' completed files is built from their stored
chunks on each search (fast for the stores this engine serves: the index is plain Python
over a few thousand chunks); nothing else has to be kept in step with the files.

Embeddings (when an endpoint is configured): indexing embeds each chunk and stores the
vectors beside the chunks, with the model's name; an embeddings failure fails the file
(`server_error`), so a completed file is always searchable by meaning. Search embeds the
query and ranks hybrid, using only vectors of the configured model (a file indexed before,
or with another model, gets its BM25 score alone); if the query cannot be embedded, the
search falls back to BM25 with a warning.
"""

import asyncio
import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from redis.exceptions import WatchError

from prism import redis_keys as keys
from prism.redis_client import AsyncRedis

from .ids import FILE_BATCH, VECTOR_STORE, new_id, now
from .pagination import PageRequest, invalid_cursor
from .retrieval.bm25 import Index
from .retrieval.chunking import Chunk, ChunkingStrategy, chunk
from .retrieval.embeddings import EmbeddingsEndpoint, EmbeddingsError, embed
from .retrieval.errors import FileError
from .retrieval.parse import parse
from .store import JSON, Store
from .vector_store_filters import matches

log = logging.getLogger("prism.engine.vector_stores")

# How long an indexing lease lasts without renewal, and how often a task renews it.
LEASE_SECONDS = 60
# How long a call to the embeddings endpoint may take.
_EMBEDDINGS_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
_RENEW_SECONDS = 20
FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")


@dataclass(frozen=True)
class SearchHit:
    """One chunk found by a search: what the search endpoint and the file_search tool
    answer."""

    vector_store_id: str
    file_id: str
    filename: str
    score: float
    text: str
    attributes: dict[str, Any]


class VectorStores:
    def __init__(
        self, redis: AsyncRedis, store: Store, embeddings: EmbeddingsEndpoint | None = None
    ) -> None:
        self._redis = redis
        self._store = store
        self._tasks: set[asyncio.Task[None]] = set()
        self._embeddings = embeddings
        self._http = None if embeddings is None else httpx.AsyncClient(timeout=_EMBEDDINGS_TIMEOUT)

    async def close(self) -> None:
        """Stops this process's indexing; a file it left `in_progress` is indexed again
        once its lease runs out."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    # Vector stores

    async def create(self, record: JSON) -> None:
        score = await self._store.scores(1)
        # The record before the index entry, which is in another Cluster slot (see
        # Store.listed for how a listing handles an entry left without its record).
        await self._redis.set(keys.engine_vector_store(record["id"]), json.dumps(record))
        await self._redis.zadd(keys.ENGINE_VECTOR_STORES, {record["id"]: score})

    async def get_record(self, vector_store_id: str) -> JSON | None:
        if not vector_store_id.startswith(VECTOR_STORE):
            return None
        raw = await self._redis.get(keys.engine_vector_store(vector_store_id))
        return None if raw is None else json.loads(raw)

    async def put_record(self, record: JSON) -> None:
        await self._redis.set(keys.engine_vector_store(record["id"]), json.dumps(record))

    async def get(self, vector_store_id: str) -> JSON | None:
        """The spec's VectorStoreObject, counted from its files."""
        record = await self.get_record(vector_store_id)
        return None if record is None else await self._with_counts(record)

    async def list_stores(self, page: PageRequest) -> tuple[list[JSON], bool]:
        ids = await self._redis.zrange(keys.ENGINE_VECTOR_STORES, 0, -1)
        page_ids, has_more = _page(ids, page)
        records = await self._store.listed(
            keys.ENGINE_VECTOR_STORES, page_ids, keys.engine_vector_store
        )
        return [await self._with_counts(record) for record in records], has_more

    async def delete(self, vector_store_id: str) -> bool:
        if await self.get_record(vector_store_id) is None:
            return False
        file_ids = await self._redis.zrange(keys.engine_vector_store_files(vector_store_id), 0, -1)
        batches = keys.engine_vector_store_batches(vector_store_id)
        batch_ids = await self._redis.zrange(batches, 0, -1)
        doomed = [keys.engine_vector_store(vector_store_id), batches]
        doomed.append(keys.engine_vector_store_files(vector_store_id))
        for file_id in file_ids:
            doomed += [
                keys.engine_vector_store_file(vector_store_id, file_id),
                keys.engine_vector_store_chunks(vector_store_id, file_id),
                keys.engine_vector_store_indexing(vector_store_id, file_id),
            ]
        for batch_id in batch_ids:
            doomed += [
                keys.engine_vector_store_batch(vector_store_id, batch_id),
                keys.engine_vector_store_batch_files(vector_store_id, batch_id),
            ]
        await self._redis.delete(*doomed)
        await self._redis.zrem(keys.ENGINE_VECTOR_STORES, vector_store_id)
        return True

    async def touch(self, record: JSON) -> None:
        """Marks the store active now, which moves its expiry along."""
        record["last_active_at"] = now()
        expires_after = record.get("expires_after")
        if expires_after:
            record["expires_at"] = record["last_active_at"] + expires_after["days"] * 86400
        await self.put_record(record)

    async def _with_counts(self, record: JSON) -> JSON:
        files = await self._files(record["id"])
        counts = _counts(files)
        if record.get("expires_at") is not None and record["expires_at"] <= now():
            status = "expired"
        else:
            status = "in_progress" if counts["in_progress"] else "completed"
        usage = sum(f["usage_bytes"] for f in files if f["status"] == "completed")
        return {**record, "file_counts": counts, "usage_bytes": usage, "status": status}

    # Vector store files

    async def add_files(
        self,
        vector_store_id: str,
        file_ids: Sequence[str],
        strategies: Sequence[ChunkingStrategy],
        attributes: Sequence[dict[str, Any] | None],
        batch_id: str | None = None,
    ) -> list[JSON]:
        """Adds the files (a file already there is indexed again, as given now) and starts
        indexing them; answers their records, `in_progress`."""
        created = now()
        first = await self._store.scores(len(file_ids))
        records, tokens = [], []
        async with self._redis.pipeline(transaction=True) as pipe:
            for offset, (file_id, strategy, attrs) in enumerate(
                zip(file_ids, strategies, attributes, strict=True)
            ):
                record = {
                    "id": file_id,
                    "object": "vector_store.file",
                    "usage_bytes": 0,
                    "created_at": created,
                    "vector_store_id": vector_store_id,
                    "status": "in_progress",
                    "last_error": None,
                    "chunking_strategy": strategy.to_response(),
                    "attributes": attrs or {},
                }
                token = secrets.token_hex(8)
                records.append(record)
                tokens.append(token)
                pipe.set(
                    keys.engine_vector_store_file(vector_store_id, file_id), json.dumps(record)
                )
                pipe.delete(keys.engine_vector_store_chunks(vector_store_id, file_id))
                pipe.set(
                    keys.engine_vector_store_indexing(vector_store_id, file_id),
                    token,
                    ex=LEASE_SECONDS,
                )
                pipe.zadd(
                    keys.engine_vector_store_files(vector_store_id),
                    {file_id: first + offset},
                    nx=True,
                )
                if batch_id is not None:
                    pipe.zadd(
                        keys.engine_vector_store_batch_files(vector_store_id, batch_id),
                        {file_id: first + offset},
                    )
            await pipe.execute()
        for record, strategy, token in zip(records, strategies, tokens, strict=True):
            self._start(vector_store_id, record["id"], strategy, token)
        return records

    async def get_file(self, vector_store_id: str, file_id: str) -> JSON | None:
        raw = await self._redis.get(keys.engine_vector_store_file(vector_store_id, file_id))
        if raw is None:
            return None
        record = json.loads(raw)
        await self._revive(vector_store_id, [record])
        return record

    async def list_files(
        self,
        vector_store_id: str,
        page: PageRequest,
        status: str | None = None,
        batch_id: str | None = None,
    ) -> tuple[list[JSON], bool]:
        index = (
            keys.engine_vector_store_files(vector_store_id)
            if batch_id is None
            else keys.engine_vector_store_batch_files(vector_store_id, batch_id)
        )
        ids = await self._redis.zrange(index, 0, -1)
        records = await self._file_records(vector_store_id, ids)
        # A filter is on the current status, so the whole list is read and then paged.
        by_id = {record["id"]: record for record in records}
        kept = [i for i in ids if i in by_id and (status is None or by_id[i]["status"] == status)]
        page_ids, has_more = _page(ids, page, kept)
        return [by_id[i] for i in page_ids], has_more

    async def set_attributes(
        self, vector_store_id: str, file_id: str, attributes: dict[str, Any]
    ) -> JSON | None:
        def change(record: JSON) -> JSON:
            return {**record, "attributes": attributes}

        return await self._update_file(vector_store_id, file_id, change)

    async def remove_file(self, vector_store_id: str, file_id: str) -> bool:
        """Removes the file from the store (and so from search); the file itself stays."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(
                keys.engine_vector_store_file(vector_store_id, file_id),
                keys.engine_vector_store_chunks(vector_store_id, file_id),
                keys.engine_vector_store_indexing(vector_store_id, file_id),
            )
            pipe.zrem(keys.engine_vector_store_files(vector_store_id), file_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def file_chunks(self, vector_store_id: str, file_id: str) -> list[Chunk]:
        """A completed file's chunks, in order; none for a file not (yet) indexed."""
        raw = await self._redis.get(keys.engine_vector_store_chunks(vector_store_id, file_id))
        if raw is None:
            return []
        return [Chunk.from_dict(item) for item in json.loads(raw)["chunks"]]

    async def _files(self, vector_store_id: str) -> list[JSON]:
        ids = await self._redis.zrange(keys.engine_vector_store_files(vector_store_id), 0, -1)
        return await self._file_records(vector_store_id, ids)

    async def _file_records(self, vector_store_id: str, file_ids: Sequence[str]) -> list[JSON]:
        if not file_ids:
            return []
        raws = await self._redis.mget(
            [keys.engine_vector_store_file(vector_store_id, i) for i in file_ids]
        )
        records = [json.loads(raw) for raw in raws if raw is not None]
        await self._revive(vector_store_id, records)
        return records

    # File batches

    async def create_batch(
        self,
        vector_store_id: str,
        file_ids: Sequence[str],
        strategies: Sequence[ChunkingStrategy],
        attributes: Sequence[dict[str, Any] | None],
    ) -> JSON:
        batch = {
            "id": new_id(FILE_BATCH),
            "object": "vector_store.files_batch",
            "created_at": now(),
            "vector_store_id": vector_store_id,
            "cancelled": False,
        }
        score = await self._store.scores(1)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(
                keys.engine_vector_store_batch(vector_store_id, batch["id"]), json.dumps(batch)
            )
            pipe.zadd(keys.engine_vector_store_batches(vector_store_id), {batch["id"]: score})
            await pipe.execute()
        await self.add_files(vector_store_id, file_ids, strategies, attributes, batch["id"])
        found = await self.get_batch(vector_store_id, batch["id"])
        assert found is not None  # just written
        return found

    async def get_batch(self, vector_store_id: str, batch_id: str) -> JSON | None:
        """The spec's VectorStoreFileBatchObject, counted from its files."""
        raw = await self._redis.get(keys.engine_vector_store_batch(vector_store_id, batch_id))
        if raw is None:
            return None
        batch = json.loads(raw)
        ids = await self._redis.zrange(
            keys.engine_vector_store_batch_files(vector_store_id, batch_id), 0, -1
        )
        counts = _counts(await self._file_records(vector_store_id, ids))
        cancelled = batch.pop("cancelled")
        if counts["in_progress"]:
            status = "in_progress"
        elif cancelled:
            status = "cancelled"
        elif counts["total"] and counts["failed"] == counts["total"]:
            status = "failed"
        else:
            status = "completed"
        return {**batch, "status": status, "file_counts": counts}

    async def cancel_batch(self, vector_store_id: str, batch_id: str) -> JSON | None:
        """Cancels the batch's files still in progress; those done stay done."""
        key = keys.engine_vector_store_batch(vector_store_id, batch_id)
        raw = await self._redis.get(key)
        if raw is None:
            return None
        await self._redis.set(key, json.dumps({**json.loads(raw), "cancelled": True}))
        ids = await self._redis.zrange(
            keys.engine_vector_store_batch_files(vector_store_id, batch_id), 0, -1
        )

        def cancel(record: JSON) -> JSON | None:
            if record["status"] != "in_progress":
                return None
            return {**record, "status": "cancelled"}

        for file_id in ids:
            await self._update_file(vector_store_id, file_id, cancel, drop_lease=True)
        return await self.get_batch(vector_store_id, batch_id)

    # Search

    async def search(
        self,
        vector_store_ids: Sequence[str],
        query: str | Sequence[str],
        *,
        max_num_results: int,
        ranker: str = "auto",
        score_threshold: float = 0.0,
        filters: Mapping[str, Any] | None = None,
    ) -> list[SearchHit]:
        """The best chunks of the stores' completed files (those whose attributes pass
        `filters`, checked by vector_store_filters.check_filter). Raises ParamError for
        out-of-range options."""
        index = Index()
        files: dict[str, tuple[str, str, dict[str, Any]]] = {}
        for vector_store_id in vector_store_ids:
            records = [f for f in await self._files(vector_store_id) if f["status"] == "completed"]
            if filters is not None:
                records = [f for f in records if matches(filters, f.get("attributes") or {})]
            if not records:
                continue
            raws = await self._redis.mget(
                [keys.engine_vector_store_chunks(vector_store_id, f["id"]) for f in records]
            )
            for record, raw in zip(records, raws, strict=True):
                if raw is None:
                    continue
                stored = json.loads(raw)
                # Keyed by store too: the same file may be in two of the searched stores.
                key = f"{vector_store_id}/{record['id']}"
                index.add_file(
                    key, [Chunk.from_dict(item) for item in stored["chunks"]], self._vectors(stored)
                )
                files[key] = (vector_store_id, stored["filename"], record.get("attributes") or {})
        results = index.search(
            query,
            max_num_results=max_num_results,
            ranker=ranker,
            score_threshold=score_threshold,
            query_vector=await self._query_vector(query) if files else None,
        )
        hits = []
        for result in results:
            vector_store_id, filename, attributes = files[result.file_id]
            file_id = result.file_id.split("/", 1)[1]
            hits.append(
                SearchHit(
                    vector_store_id, file_id, filename, result.score, result.chunk.text, attributes
                )
            )
        return hits

    def _vectors(self, stored: JSON) -> list[list[float]] | None:
        """The stored chunks' embeddings, if made by the configured model."""
        if self._embeddings is None or stored.get("embedding_model") != self._embeddings.model:
            return None
        return stored["vectors"]

    async def _query_vector(self, query: str | Sequence[str]) -> list[float] | None:
        if self._embeddings is None or self._http is None:
            return None
        text = query if isinstance(query, str) else "\n".join(query)
        try:
            [vector] = await embed(self._http, self._embeddings, [text])
        except EmbeddingsError as error:
            log.warning("search ranked by BM25 alone: %s", error)
            return None
        return vector

    # Indexing

    def _start(
        self, vector_store_id: str, file_id: str, strategy: ChunkingStrategy, token: str
    ) -> None:
        task = asyncio.create_task(self._index(vector_store_id, file_id, strategy, token))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _index(
        self, vector_store_id: str, file_id: str, strategy: ChunkingStrategy, token: str
    ) -> None:
        renewer = asyncio.create_task(self._renew(vector_store_id, file_id, token))
        try:
            outcome = await self._parse(file_id, strategy)
        finally:
            renewer.cancel()
        if isinstance(outcome, dict):
            change = _failed(outcome)
            chunks_json = None
        else:
            filename, text, chunks, embedded = outcome
            usage = len(text.encode("utf-8"))
            stored: JSON = {"filename": filename, "chunks": [item.to_dict() for item in chunks]}
            if embedded is not None:
                stored.update(embedded)
            chunks_json = json.dumps(stored)

            def change(record: JSON) -> JSON:
                return {**record, "status": "completed", "usage_bytes": usage}

        await self._update_file(
            vector_store_id, file_id, change, token=token, chunks_json=chunks_json, drop_lease=True
        )

    async def _parse(
        self, file_id: str, strategy: ChunkingStrategy
    ) -> tuple[str, str, list[Chunk], JSON | None] | dict[str, str]:
        """(filename, text, chunks, their embeddings when configured), or the last_error
        of a file that cannot be indexed."""
        file = await self._store.get_file(file_id)
        if file is None:
            return {"code": "invalid_file", "message": f"File {file_id} was deleted."}
        path = self._store.file_path(file_id)

        def work() -> tuple[str, list[Chunk]]:
            text = parse(path.read_bytes(), file["filename"])
            return text, chunk(text, strategy)

        try:
            # Parsing a large PDF takes a while: off the event loop.
            text, chunks = await asyncio.to_thread(work)
        except FileError as error:
            return error.last_error()
        except FileNotFoundError:
            return {"code": "invalid_file", "message": f"File {file_id} was deleted."}
        except Exception:
            log.exception("indexing file %s failed", file_id)
            return {"code": "server_error", "message": "The engine failed to index the file."}
        if self._embeddings is None or self._http is None:
            return file["filename"], text, chunks, None
        try:
            vectors = await embed(self._http, self._embeddings, [c.text for c in chunks])
        except EmbeddingsError as error:
            # The endpoint's URL and answer go to the log, not to the API's clients.
            log.warning("indexing file %s failed: %s", file_id, error)
            return {
                "code": "server_error",
                "message": "The engine could not embed the file: its embeddings endpoint failed.",
            }
        embedded = {"embedding_model": self._embeddings.model, "vectors": vectors}
        return file["filename"], text, chunks, embedded

    async def _renew(self, vector_store_id: str, file_id: str, token: str) -> None:
        key = keys.engine_vector_store_indexing(vector_store_id, file_id)
        while True:
            await asyncio.sleep(_RENEW_SECONDS)
            if await self._redis.get(key) != token:
                return
            await self._redis.expire(key, LEASE_SECONDS)

    async def _revive(self, vector_store_id: str, records: Sequence[JSON]) -> None:
        """Indexes again the files `in_progress` whose indexing process died (no lease)."""
        pending = [r for r in records if r["status"] == "in_progress"]
        if not pending:
            return
        leases = [keys.engine_vector_store_indexing(vector_store_id, r["id"]) for r in pending]
        held = await self._redis.exists(*leases)
        if held == len(pending):
            return
        for record, lease in zip(pending, leases, strict=True):
            token = secrets.token_hex(8)
            # Only one process takes over a file.
            if await self._redis.set(lease, token, ex=LEASE_SECONDS, nx=True):
                static = record["chunking_strategy"]["static"]
                strategy = ChunkingStrategy(
                    static["max_chunk_size_tokens"], static["chunk_overlap_tokens"]
                )
                log.info(
                    "indexing file %s of %s again: its indexing stopped",
                    record["id"],
                    vector_store_id,
                )
                self._start(vector_store_id, record["id"], strategy, token)

    async def _update_file(
        self,
        vector_store_id: str,
        file_id: str,
        change: Callable[[JSON], JSON | None],
        *,
        token: str | None = None,
        chunks_json: str | None = None,
        drop_lease: bool = False,
    ) -> JSON | None:
        """Applies `change` to the file's record unless it was removed, or (with `token`)
        its lease is no longer that token's; `change` returns None to leave it."""
        key = keys.engine_vector_store_file(vector_store_id, file_id)
        lease = keys.engine_vector_store_indexing(vector_store_id, file_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key, lease)
                    raw = await pipe.get(key)
                    if raw is None or (token is not None and await pipe.get(lease) != token):
                        await pipe.unwatch()
                        return None
                    record = change(json.loads(raw))
                    if record is None:
                        await pipe.unwatch()
                        return None
                    pipe.multi()
                    pipe.set(key, json.dumps(record))
                    if chunks_json is not None:
                        pipe.set(
                            keys.engine_vector_store_chunks(vector_store_id, file_id), chunks_json
                        )
                    if drop_lease:
                        pipe.delete(lease)
                    await pipe.execute()
                    return record
                except WatchError:
                    continue


def _failed(last_error: dict[str, str]) -> Callable[[JSON], JSON]:
    def change(record: JSON) -> JSON:
        return {**record, "status": "failed", "last_error": last_error}

    return change


def _counts(files: Sequence[JSON]) -> dict[str, int]:
    counts = dict.fromkeys(FILE_STATUSES, 0)
    for file in files:
        counts[file["status"]] += 1
    return {**counts, "total": len(files)}


def _page(
    ids: Sequence[str], page: PageRequest, kept: Sequence[str] | None = None
) -> tuple[list[str], bool]:
    """One page of `kept` (default: all `ids`), with cursors placed by their position in
    `ids` (creation order), so a cursor whose object the filter drops still works."""
    position = {object_id: n for n, object_id in enumerate(ids)}
    candidates = list(ids if kept is None else kept)
    if page.order == "desc":
        candidates.reverse()

    def rank(object_id: str) -> int:
        n = position[object_id]
        return n if page.order == "asc" else -n

    for cursor, param in ((page.after, "after"), (page.before, "before")):
        if cursor is not None and cursor not in position:
            raise invalid_cursor(param, cursor)
    if page.after is not None:
        candidates = [i for i in candidates if rank(i) > rank(page.after)]
    if page.before is not None:
        candidates = [i for i in candidates if rank(i) < rank(page.before)]
    if page.before is not None and page.after is None:
        # Only `before`: the page is the `limit` objects just before it.
        return candidates[-page.limit :], len(candidates) > page.limit
    return candidates[: page.limit], len(candidates) > page.limit
