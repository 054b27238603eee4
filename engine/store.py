"""The engine's state in Redis: every object as a JSON string, and one sorted set per listing.

Index entries are scored by one shared counter (redis_keys.ENGINE_SEQUENCE), so a listing's
order is creation order whichever engine process created the objects, and every score is
unique, which keeps `after`/`before` cursors exact. Key names are in prism/redis_keys.py; a
thread's keys share its hash tag, so writing a thread with its messages is one transaction.
File bytes are not here: they are files under the data directory (`file_path`).
"""

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from redis.exceptions import WatchError

from prism import redis_keys as keys
from prism.redis_client import AsyncRedis, get_many

from .pagination import PageRequest, invalid_cursor

JSON = dict[str, Any]


class Store:
    def __init__(self, redis: AsyncRedis, data_dir: Path) -> None:
        self._redis = redis
        self.data_dir = data_dir

    # Assistants

    async def create_assistant(self, assistant: JSON) -> None:
        score = await self.scores(1)
        await self._redis.set(keys.engine_object(assistant["id"]), json.dumps(assistant))
        await self._redis.zadd(keys.ENGINE_ASSISTANTS, {assistant["id"]: score})

    async def put_assistant(self, assistant: JSON) -> None:
        await self._redis.set(keys.engine_object(assistant["id"]), json.dumps(assistant))

    async def get_assistant(self, assistant_id: str) -> JSON | None:
        return await self._get(keys.engine_object(assistant_id), "assistant")

    async def delete_assistant(self, assistant_id: str) -> bool:
        deleted = await self._redis.delete(keys.engine_object(assistant_id))
        await self._redis.zrem(keys.ENGINE_ASSISTANTS, assistant_id)
        return bool(deleted)

    async def list_assistants(self, page: PageRequest) -> tuple[list[JSON], bool]:
        ids, has_more = await self._page_ids(keys.ENGINE_ASSISTANTS, page)
        return await self.listed(keys.ENGINE_ASSISTANTS, ids, keys.engine_object), has_more

    # Threads and their messages

    async def create_thread(self, thread: JSON, messages: list[JSON]) -> None:
        """The thread and its first messages (in this order), all at once."""
        first = await self.scores(len(messages) + 1)
        thread_id = thread["id"]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.engine_thread(thread_id), json.dumps(thread))
            for offset, message in enumerate(messages, start=1):
                self._queue_message(pipe, message, first + offset)
            await pipe.execute()

    async def put_thread(self, thread: JSON) -> None:
        await self._redis.set(keys.engine_thread(thread["id"]), json.dumps(thread))

    async def get_thread(self, thread_id: str) -> JSON | None:
        return await self._get(keys.engine_thread(thread_id), "thread")

    async def delete_thread(self, thread_id: str) -> bool:
        """The thread, its messages, its runs and their steps, and their indexes. A queued
        run's worker then finds no run and drops it."""
        index = keys.engine_thread_messages(thread_id)
        message_ids = await self._redis.zrange(index, 0, -1)
        message_keys = [keys.engine_message(thread_id, i) for i in message_ids]
        runs = keys.engine_thread_runs(thread_id)
        run_ids = set(await self._redis.zrange(runs, 0, -1))
        run_ids |= {m["run_id"] for m in await self._many(message_keys) if m.get("run_id")}
        run_keys = []
        for run_id in run_ids:
            steps = keys.engine_run_steps(thread_id, run_id)
            step_ids = await self._redis.zrange(steps, 0, -1)
            run_keys += [
                keys.engine_run(thread_id, run_id),
                keys.engine_run_state(thread_id, run_id),
                keys.engine_run_messages(thread_id, run_id),
                keys.engine_run_events(thread_id, run_id),
                steps,
                *(keys.engine_step(thread_id, step_id) for step_id in step_ids),
            ]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.engine_thread(thread_id))
            pipe.delete(index, *message_keys, runs, keys.engine_active_run(thread_id), *run_keys)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def add_message(self, message: JSON) -> None:
        """A new message at the end of its thread (and of its run's messages, if a run's)."""
        score = await self.scores(1)
        async with self._redis.pipeline(transaction=True) as pipe:
            self._queue_message(pipe, message, score)
            await pipe.execute()

    async def put_message(self, message: JSON) -> None:
        """Saves a change to a message that add_message stored."""
        key = keys.engine_message(message["thread_id"], message["id"])
        await self._redis.set(key, json.dumps(message))

    async def get_message(self, thread_id: str, message_id: str) -> JSON | None:
        return await self._get(keys.engine_message(thread_id, message_id), "message")

    async def delete_message(self, thread_id: str, message_id: str) -> bool:
        message = await self.get_message(thread_id, message_id)
        if message is None:
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.engine_message(thread_id, message_id))
            pipe.zrem(keys.engine_thread_messages(thread_id), message_id)
            if message.get("run_id"):
                pipe.zrem(keys.engine_run_messages(thread_id, message["run_id"]), message_id)
            await pipe.execute()
        return True

    async def list_messages(
        self, thread_id: str, page: PageRequest, run_id: str | None = None
    ) -> tuple[list[JSON], bool]:
        index = (
            keys.engine_run_messages(thread_id, run_id)
            if run_id
            else keys.engine_thread_messages(thread_id)
        )
        ids, has_more = await self._page_ids(index, page)
        return await self._many([keys.engine_message(thread_id, i) for i in ids]), has_more

    async def thread_messages(self, thread_id: str) -> list[JSON]:
        """Every message of the thread, oldest first: what a run sends the model."""
        ids = await self._redis.zrange(keys.engine_thread_messages(thread_id), 0, -1)
        return await self._many([keys.engine_message(thread_id, i) for i in ids])

    # Runs and their steps

    async def create_run(self, run: JSON, state: JSON, messages: Sequence[JSON] = ()) -> str | None:
        """The run, as its thread's active run, with the additional messages it adds to the
        thread; or, when another run of the thread has not ended, that run's id."""
        thread_id, run_id = run["thread_id"], run["id"]
        active_key = keys.engine_active_run(thread_id)
        first = await self.scores(len(messages) + 1)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(active_key)
                    active = await pipe.get(active_key)
                    if active is not None:
                        return active
                    pipe.multi()
                    pipe.set(keys.engine_run(thread_id, run_id), json.dumps(run))
                    pipe.set(keys.engine_run_state(thread_id, run_id), json.dumps(state))
                    pipe.zadd(keys.engine_thread_runs(thread_id), {run_id: first})
                    pipe.set(active_key, run_id)
                    for offset, message in enumerate(messages, start=1):
                        self._queue_message(pipe, message, first + offset)
                    await pipe.execute()
                    return None
                except WatchError:
                    continue

    async def active_run(self, thread_id: str) -> str | None:
        """The id of the thread's run that has not ended, if any."""
        return await self._redis.get(keys.engine_active_run(thread_id))

    async def get_run(self, thread_id: str, run_id: str) -> JSON | None:
        return await self._get(keys.engine_run(thread_id, run_id), "run")

    async def get_run_state(self, thread_id: str, run_id: str) -> JSON:
        raw = await self._redis.get(keys.engine_run_state(thread_id, run_id))
        return json.loads(raw) if raw else {}

    async def list_runs(self, thread_id: str, page: PageRequest) -> tuple[list[JSON], bool]:
        ids, has_more = await self._page_ids(keys.engine_thread_runs(thread_id), page)
        return await self._many([keys.engine_run(thread_id, i) for i in ids]), has_more

    async def update_run(
        self,
        thread_id: str,
        run_id: str,
        change: Callable[[JSON], JSON | None],
        *,
        state: JSON | None = None,
        messages: Sequence[JSON] = (),
        new_steps: Sequence[JSON] = (),
        changed_steps: Sequence[JSON] = (),
    ) -> JSON | None:
        """Applies `change` to the stored run and saves it with the other writes, all at
        once, unless the run changed meanwhile (then `change` sees the new run). `new_steps`
        are added to the run's steps; `changed_steps` are saved over stored ones. `change`
        returns None to leave the run as it is; update_run then returns None too. A run
        reaching a terminal status stops being its thread's active run."""
        run_key = keys.engine_run(thread_id, run_id)
        fresh = len(messages) + len(new_steps)
        first = await self.scores(fresh) if fresh else 0
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(run_key)
                    raw = await pipe.get(run_key)
                    if raw is None:
                        return None
                    run = change(json.loads(raw))
                    if run is None:
                        await pipe.unwatch()
                        return None
                    pipe.multi()
                    pipe.set(run_key, json.dumps(run))
                    if state is not None:
                        pipe.set(keys.engine_run_state(thread_id, run_id), json.dumps(state))
                    score = first
                    for message in messages:
                        self._queue_message(pipe, message, score)
                        score += 1
                    for step in [*new_steps, *changed_steps]:
                        pipe.set(keys.engine_step(thread_id, step["id"]), json.dumps(step))
                    for step in new_steps:
                        pipe.zadd(keys.engine_run_steps(thread_id, run_id), {step["id"]: score})
                        score += 1
                    if run["status"] in TERMINAL_STATUSES:
                        pipe.delete(keys.engine_active_run(thread_id))
                    await pipe.execute()
                    return run
                except WatchError:
                    continue

    async def get_step(self, thread_id: str, step_id: str) -> JSON | None:
        return await self._get(keys.engine_step(thread_id, step_id), "step")

    async def list_steps(
        self, thread_id: str, run_id: str, page: PageRequest
    ) -> tuple[list[JSON], bool]:
        ids, has_more = await self._page_ids(keys.engine_run_steps(thread_id, run_id), page)
        return await self._many([keys.engine_step(thread_id, i) for i in ids]), has_more

    # Files (the records; the bytes are at file_path)

    def file_path(self, file_id: str) -> Path:
        return self.data_dir / file_id

    async def add_file(self, file: JSON) -> None:
        score = await self.scores(1)
        await self._redis.set(keys.engine_object(file["id"]), json.dumps(file))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.ENGINE_FILES, {file["id"]: score})
            pipe.zadd(keys.engine_files_by_purpose(file["purpose"]), {file["id"]: score})
            await pipe.execute()

    async def get_file(self, file_id: str) -> JSON | None:
        return await self._get(keys.engine_object(file_id), "file")

    async def missing_file(self, file_ids: Sequence[str]) -> str | None:
        """The first of the ids that is not a stored file, if any, in one read."""
        if not file_ids:
            return None
        raws = await get_many(self._redis, [keys.engine_object(i) for i in file_ids])
        for file_id, raw in zip(file_ids, raws, strict=True):
            if _of_kind(raw, "file") is None:
                return file_id
        return None

    async def delete_file(self, file_id: str) -> bool:
        """The record, then the bytes."""
        file = await self.get_file(file_id)
        if file is None:
            return False
        await self._redis.delete(keys.engine_object(file_id))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrem(keys.ENGINE_FILES, file_id)
            pipe.zrem(keys.engine_files_by_purpose(file["purpose"]), file_id)
            await pipe.execute()
        self.file_path(file_id).unlink(missing_ok=True)
        return True

    async def list_files(
        self, page: PageRequest, purpose: str | None = None
    ) -> tuple[list[JSON], bool]:
        index = keys.engine_files_by_purpose(purpose) if purpose else keys.ENGINE_FILES
        ids, has_more = await self._page_ids(index, page)
        return await self.listed(index, ids, keys.engine_object), has_more

    # Shared

    async def scores(self, count: int) -> int:
        """The first of `count` fresh index scores, from the engine's shared counter."""
        last = await self._redis.incrby(keys.ENGINE_SEQUENCE, count)
        return last - count + 1

    def _queue_message(self, pipe: Any, message: JSON, score: int) -> None:
        thread_id, message_id = message["thread_id"], message["id"]
        pipe.set(keys.engine_message(thread_id, message_id), json.dumps(message))
        pipe.zadd(keys.engine_thread_messages(thread_id), {message_id: score})
        if message.get("run_id"):
            pipe.zadd(keys.engine_run_messages(thread_id, message["run_id"]), {message_id: score})

    async def _get(self, key: str, kind: str) -> JSON | None:
        return _of_kind(await self._redis.get(key), kind)

    async def _many(self, object_keys: list[str]) -> list[JSON]:
        """The records in this order; one deleted meanwhile is left out."""
        raws = await get_many(self._redis, object_keys)
        return [json.loads(raw) for raw in raws if raw is not None]

    async def listed(self, index: str, ids: list[str], name: Callable[[str], str]) -> list[JSON]:
        """The records of ids from an index outside their Cluster slots, in order. Such an
        entry is written after its record and removed after it (an id is never reused), so
        one whose record is missing was left by a delete that died between the two: it is
        left out and removed here."""
        raws = await get_many(self._redis, [name(i) for i in ids])
        gone = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        if gone:
            await self._redis.zrem(index, *gone)
        return [json.loads(raw) for raw in raws if raw is not None]

    async def _page_ids(self, index: str, page: PageRequest) -> tuple[list[str], bool]:
        """One page of the index's ids in the page's order, and whether more follow."""
        after = await self._cursor_score(index, page.after, "after")
        before = await self._cursor_score(index, page.before, "before")
        # Exclusive bounds in ascending score order.
        low, high = (after, before) if page.order == "asc" else (before, after)
        minimum = f"({low}" if low is not None else "-inf"
        maximum = f"({high}" if high is not None else "+inf"
        # Only `before`: the page is the `limit` objects just before it, so walk back from it.
        from_start = page.before is None or page.after is not None
        ascending = (page.order == "asc") == from_start
        count = page.limit + 1
        if ascending:
            ids = await self._redis.zrange(
                index, minimum, maximum, byscore=True, offset=0, num=count
            )
        else:
            ids = await self._redis.zrange(
                index, maximum, minimum, byscore=True, desc=True, offset=0, num=count
            )
        has_more = len(ids) > page.limit
        ids = ids[: page.limit]
        if not from_start:
            ids.reverse()
        return ids, has_more

    async def _cursor_score(self, index: str, cursor: str | None, param: str) -> int | None:
        if cursor is None:
            return None
        score = await self._redis.zscore(index, cursor)
        if score is None:
            raise invalid_cursor(param, cursor)
        return int(score)


def _of_kind(raw: str | None, kind: str) -> JSON | None:
    """The stored record, if there is one and it is of this kind."""
    if raw is None:
        return None
    record = json.loads(raw)
    # Ids are client input: `GET /assistants/file-…` must not answer a file.
    return record if record.get("object") == _OBJECTS[kind] else None


# The `object` value of each kind's records.
_OBJECTS = {
    "assistant": "assistant",
    "thread": "thread",
    "message": "thread.message",
    "file": "file",
    "run": "thread.run",
    "step": "thread.run.step",
}

# A run in one of these has ended: its thread may start another.
TERMINAL_STATUSES = frozenset(("completed", "failed", "cancelled", "expired", "incomplete"))
