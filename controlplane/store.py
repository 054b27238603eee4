"""Orgs and keys in Redis, under the names in prism.redis_keys.

Records are JSON strings. Writes that touch several keys run in MULTI/EXEC transactions,
with WATCH on what they read (redis-py's `transaction`, which retries when a watched key
changes), so concurrent admin calls on any replica cannot interleave;
nothing is cached in the process, so replicas never disagree.
"""

import json
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import redis.asyncio as redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from controlplane.errors import AlreadyExists, FailedPrecondition, NotFound, Unavailable
from controlplane.records import KeyRecord, OrgRecord
from prism import redis_keys

Params = ParamSpec("Params")
Result = TypeVar("Result")
Record = TypeVar("Record", OrgRecord, KeyRecord)

# The hot path's one round trip: the key's record and its org's, found from the hash of the
# presented secret. The script derives the record keys from what it reads, which Redis
# Cluster forbids (every key must be in KEYS); this is why the store is not Cluster-safe yet.
# Making it so would mean hash-tagging a key's records with its org and passing both in KEYS.
_LOOKUP = """
local key_id = redis.call('GET', KEYS[1])
if not key_id then return false end
local key = redis.call('GET', ARGV[1] .. key_id)
if not key then return false end
local org = redis.call('GET', ARGV[2] .. cjson.decode(key)['org_id'])
if not org then return false end
return {key, org}
"""

_CREATE_ORG = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('ZADD', KEYS[2], 0, ARGV[2])
  return 1
end
return 0
"""


def _unavailable_on_connection_error(
    call: Callable[Params, Awaitable[Result]],
) -> Callable[Params, Awaitable[Result]]:
    @wraps(call)
    async def guarded(*args: Params.args, **kwargs: Params.kwargs) -> Result:
        try:
            return await call(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise Unavailable(f"Redis (REDIS_URL) did not answer: {error}") from error

    return guarded


class Store:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._lookup = client.register_script(_LOOKUP)
        self._create_org = client.register_script(_CREATE_ORG)

    @_unavailable_on_connection_error
    async def ping(self) -> None:
        await self._redis.ping()

    @_unavailable_on_connection_error
    async def lookup(self, secret_sha256: str) -> tuple[KeyRecord, OrgRecord] | None:
        """The key with this secret hash and its org, in one round trip."""
        found = await self._lookup(
            keys=[redis_keys.key_by_hash(secret_sha256)],
            args=[redis_keys.key(""), redis_keys.org("")],
        )
        if not found:
            return None
        key_json, org_json = found
        return KeyRecord.from_json(json.loads(key_json)), OrgRecord.from_json(json.loads(org_json))

    # Orgs

    @_unavailable_on_connection_error
    async def create_org(self, org: OrgRecord) -> None:
        created = await self._create_org(
            keys=[redis_keys.org(org.id), redis_keys.ORGS], args=[_dump(org), org.id]
        )
        if not created:
            raise AlreadyExists(f"org '{org.id}' already exists; choose another org_id")

    @_unavailable_on_connection_error
    async def get_org(self, org_id: str) -> OrgRecord:
        raw = await self._redis.get(redis_keys.org(org_id))
        if raw is None:
            raise NotFound(f"org '{org_id}' not found")
        return OrgRecord.from_json(json.loads(raw))

    @_unavailable_on_connection_error
    async def list_orgs(self, after: str, count: int) -> tuple[list[OrgRecord], str]:
        """Up to count orgs with ids after `after`, and the id the next page starts after
        ("" when this is the last page)."""
        ids, next_after = await self._page(redis_keys.ORGS, after, count)
        records = await self._redis.mget([redis_keys.org(i) for i in ids]) if ids else []
        orgs = [OrgRecord.from_json(json.loads(raw)) for raw in records if raw is not None]
        return orgs, next_after

    @_unavailable_on_connection_error
    async def update_org(self, org_id: str, change: Callable[[OrgRecord], OrgRecord]) -> OrgRecord:
        return await self._update(redis_keys.org(org_id), f"org '{org_id}'", OrgRecord, change)

    @_unavailable_on_connection_error
    async def delete_org(self, org_id: str, *, force: bool) -> None:
        org_key, keys_key = redis_keys.org(org_id), redis_keys.org_keys(org_id)

        async def delete(pipe: Pipeline) -> None:
            if not await pipe.exists(org_key):
                raise NotFound(f"org '{org_id}' not found")
            key_ids = await pipe.zrange(keys_key, 0, -1)
            if key_ids and not force:
                count = f"{len(key_ids)} key" + ("s" if len(key_ids) > 1 else "")
                raise FailedPrecondition(
                    f"org '{org_id}' still has {count}; set force to delete the org "
                    "together with its keys"
                )
            record_keys = [redis_keys.key(i) for i in key_ids]
            if record_keys:
                # A concurrent RotateKey would otherwise leave its new hash behind.
                await pipe.watch(*record_keys)
            records = await pipe.mget(record_keys) if record_keys else []
            pipe.multi()
            for raw in records:
                if raw is not None:
                    pipe.delete(redis_keys.key_by_hash(json.loads(raw)["secret_sha256"]))
            if key_ids:
                pipe.delete(*record_keys)
                pipe.zrem(redis_keys.KEYS, *key_ids)
            pipe.delete(org_key, keys_key)
            pipe.zrem(redis_keys.ORGS, org_id)

        await self._redis.transaction(delete, org_key, keys_key)

    # Keys

    @_unavailable_on_connection_error
    async def create_key(self, key: KeyRecord) -> None:
        org_key = redis_keys.org(key.org_id)

        async def create(pipe: Pipeline) -> None:
            if not await pipe.exists(org_key):
                raise NotFound(f"org '{key.org_id}' not found; create it first")
            pipe.multi()
            pipe.set(redis_keys.key(key.id), _dump(key))
            pipe.set(redis_keys.key_by_hash(key.secret_sha256), key.id)
            pipe.zadd(redis_keys.KEYS, {key.id: 0})
            pipe.zadd(redis_keys.org_keys(key.org_id), {key.id: 0})

        # Watching the org makes a concurrent DeleteOrg and this create exclusive.
        await self._redis.transaction(create, org_key)

    @_unavailable_on_connection_error
    async def get_key(self, key_id: str) -> KeyRecord:
        raw = await self._redis.get(redis_keys.key(key_id))
        if raw is None:
            raise NotFound(f"key '{key_id}' not found")
        return KeyRecord.from_json(json.loads(raw))

    @_unavailable_on_connection_error
    async def list_keys(self, org_id: str, after: str, count: int) -> tuple[list[KeyRecord], str]:
        """Like list_orgs, for the keys of org_id, or of every org when it is empty."""
        if org_id:
            await self.get_org(org_id)
        index = redis_keys.org_keys(org_id) if org_id else redis_keys.KEYS
        ids, next_after = await self._page(index, after, count)
        records = await self._redis.mget([redis_keys.key(i) for i in ids]) if ids else []
        found = [KeyRecord.from_json(json.loads(raw)) for raw in records if raw is not None]
        return found, next_after

    @_unavailable_on_connection_error
    async def update_key(self, key_id: str, change: Callable[[KeyRecord], KeyRecord]) -> KeyRecord:
        """Applies change atomically; a changed secret hash moves the hash index with it."""
        return await self._update(redis_keys.key(key_id), f"key '{key_id}'", KeyRecord, change)

    # Helpers

    async def _page(self, index: str, after: str, count: int) -> tuple[list[str], str]:
        """Up to count members after `after` in lexicographic order, and the last of them
        when more follow (records deleted meanwhile are skipped, never the cursor)."""
        start = f"({after}" if after else "-"
        ids = await self._redis.zrange(index, start, "+", bylex=True, offset=0, num=count + 1)
        page = ids[:count]
        return page, page[-1] if len(ids) > count else ""

    async def _update(
        self,
        record_key: str,
        what: str,
        kind: type[Record],
        change: Callable[[Record], Record],
    ) -> Record:
        """change(current) written back atomically; when change returns its argument
        unchanged (an idempotent RevokeKey), nothing is written."""

        async def update(pipe: Pipeline) -> Record:
            raw = await pipe.get(record_key)
            if raw is None:
                raise NotFound(f"{what} not found")
            before = kind.from_json(json.loads(raw))
            after = change(before)
            pipe.multi()
            if after is before:
                return before
            pipe.set(record_key, _dump(after))
            if (
                isinstance(before, KeyRecord)
                and isinstance(after, KeyRecord)
                and (before.secret_sha256 != after.secret_sha256)
            ):
                pipe.delete(redis_keys.key_by_hash(before.secret_sha256))
                pipe.set(redis_keys.key_by_hash(after.secret_sha256), after.id)
            return after

        return await self._redis.transaction(update, record_key, value_from_callable=True)


def _dump(record: OrgRecord | KeyRecord) -> str:
    return json.dumps(record.to_json(), separators=(",", ":"))
