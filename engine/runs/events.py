"""A run's events, as the spec's streaming names them (`thread.run.in_progress`,
`thread.message.delta`, ...), passed from the worker that produces them to the request
that streams them, whichever engine processes those are, through a Redis stream per run.

A follower reads from a given point to the run's end (a terminal status or
requires_action), so a stream opened after the worker started misses nothing; when the
run ends without its worker saying so (cancelled while queued, expired, deleted), the
follower notices from the run itself.
"""

import json
from collections.abc import AsyncIterator
from typing import Any

from prism import redis_keys as keys
from prism.redis_client import AsyncRedis

from ..store import JSON, TERMINAL_STATUSES, Store

# Events after which a run's stream ends.
FINAL_EVENTS = frozenset(
    [f"thread.run.{status}" for status in TERMINAL_STATUSES] + ["thread.run.requires_action"]
)
_KEEP_SECONDS = 3600
_MAX_EVENTS = 100_000
# How long a follower waits for an event before looking at the run itself.
_BLOCK_MS = 1000


class RunEvents:
    def __init__(self, redis: AsyncRedis, store: Store) -> None:
        self._redis = redis
        self._store = store

    async def publish(self, thread_id: str, run_id: str, event: str, data: Any) -> None:
        key = keys.engine_run_events(thread_id, run_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                key,
                {"event": event, "data": json.dumps(data)},
                maxlen=_MAX_EVENTS,
                approximate=True,
            )
            pipe.expire(key, _KEEP_SECONDS)
            await pipe.execute()

    async def last_id(self, thread_id: str, run_id: str) -> str:
        """Where a follower starts to see only what comes next."""
        last = await self._redis.xrevrange(keys.engine_run_events(thread_id, run_id), count=1)
        return last[0][0] if last else "0"

    async def follow(
        self, thread_id: str, run_id: str, after: str = "0"
    ) -> AsyncIterator[tuple[str, JSON]]:
        key = keys.engine_run_events(thread_id, run_id)
        while True:
            read = await self._redis.xread({key: after}, block=_BLOCK_MS, count=100)
            if not read:
                run = await self._store.get_run(thread_id, run_id)
                if run is None:
                    return
                ended = run["status"] in TERMINAL_STATUSES or run["status"] == "requires_action"
                # Ended without its worker's event, unless that was written just now.
                if ended and not await self._redis.xread({key: after}, count=1):
                    yield f"thread.run.{run['status']}", run
                    return
                continue
            for entry_id, fields in read[0][1]:
                after = entry_id
                event = fields["event"]
                yield event, json.loads(fields["data"])
                if event in FINAL_EVENTS:
                    return
