"""Orgs and keys in Redis, under the names in prism.redis_keys.

Writes that touch several keys run in MULTI/EXEC transactions, with WATCH where they
depend on what they read, so concurrent admin calls on any replica cannot interleave.
"""

import json
from collections.abc import Callable
from typing import TypeVar

import redis.asyncio as redis
from redis.exceptions import WatchError

from controlplane.errors import AlreadyExists, FailedPrecondition, NotFound
from controlplane.records import Key, Org
from prism import redis_keys

Record = TypeVar("Record", Org, Key)

# One round trip for the hot path: the key's record and its org's, found from the hash of
# the presented secret. The record keys are computed inside the script, which Redis
# Cluster does not allow; a cluster deployment would need them hash-tagged by secret.
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


class Store:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._lookup = client.register_script(_LOOKUP)
        self._create_org = client.register_script(_CREATE_ORG)

    async def ping(self) -> None:
        await self._redis.ping()

    async def lookup(self, secret_sha256: str) -> tuple[Key, Org] | None:
        """The key with this secret hash and its org, in one round trip."""
        found = await self._lookup(
            keys=[redis_keys.key_by_hash(secret_sha256)],
            args=[redis_keys.key(""), redis_keys.org("")],
        )
        if not found:
            return None
        key_json, org_json = found
        return Key.from_json(json.loads(key_json)), Org.from_json(json.loads(org_json))

    # Orgs

    async def create_org(self, org: Org) -> None:
        created = await self._create_org(
            keys=[redis_keys.org(org.id), redis_keys.ORGS], args=[_dump(org), org.id]
        )
        if not created:
            raise AlreadyExists(f"org '{org.id}' already exists; choose another org_id")

    async def get_org(self, org_id: str) -> Org:
        raw = await self._redis.get(redis_keys.org(org_id))
        if raw is None:
            raise NotFound(f"org '{org_id}' not found")
        return Org.from_json(json.loads(raw))

    async def list_orgs(self, after: str, count: int) -> tuple[list[Org], bool]:
        ids, more = await self._page(redis_keys.ORGS, after, count)
        records = await self._redis.mget([redis_keys.org(i) for i in ids]) if ids else []
        return [Org.from_json(json.loads(raw)) for raw in records if raw is not None], more

    async def update_org(self, org_id: str, change: Callable[[Org], Org]) -> Org:
        return await self._update(redis_keys.org(org_id), f"org '{org_id}'", Org, change)

    async def delete_org(self, org_id: str, *, force: bool) -> None:
        org_key, keys_key = redis_keys.org(org_id), redis_keys.org_keys(org_id)
        async with self._redis.pipeline() as pipe:
            while True:
                try:
                    await pipe.watch(org_key, keys_key)
                    if not await pipe.exists(org_key):
                        raise NotFound(f"org '{org_id}' not found")
                    key_ids = await pipe.zrange(keys_key, 0, -1)
                    if key_ids and not force:
                        raise FailedPrecondition(
                            f"org '{org_id}' still has {len(key_ids)} key(s); delete them "
                            "first or set force to delete them with the org"
                        )
                    records = (
                        await pipe.mget([redis_keys.key(i) for i in key_ids]) if key_ids else []
                    )
                    pipe.multi()
                    for key_id, raw in zip(key_ids, records, strict=True):
                        if raw is not None:
                            pipe.delete(redis_keys.key_by_hash(json.loads(raw)["secret_sha256"]))
                        pipe.delete(redis_keys.key(key_id))
                    if key_ids:
                        pipe.zrem(redis_keys.KEYS, *key_ids)
                    pipe.delete(org_key, keys_key)
                    pipe.zrem(redis_keys.ORGS, org_id)
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    # Keys

    async def create_key(self, key: Key) -> None:
        org_key = redis_keys.org(key.org_id)
        async with self._redis.pipeline() as pipe:
            while True:
                try:
                    # Watching the org makes a concurrent DeleteOrg and this create exclusive.
                    await pipe.watch(org_key)
                    if not await pipe.exists(org_key):
                        raise NotFound(f"org '{key.org_id}' not found; create it first")
                    pipe.multi()
                    pipe.set(redis_keys.key(key.id), _dump(key))
                    pipe.set(redis_keys.key_by_hash(key.secret_sha256), key.id)
                    pipe.zadd(redis_keys.KEYS, {key.id: 0})
                    pipe.zadd(redis_keys.org_keys(key.org_id), {key.id: 0})
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def get_key(self, key_id: str) -> Key:
        raw = await self._redis.get(redis_keys.key(key_id))
        if raw is None:
            raise NotFound(f"key '{key_id}' not found")
        return Key.from_json(json.loads(raw))

    async def list_keys(self, org_id: str, after: str, count: int) -> tuple[list[Key], bool]:
        if org_id:
            await self.get_org(org_id)
        index = redis_keys.org_keys(org_id) if org_id else redis_keys.KEYS
        ids, more = await self._page(index, after, count)
        records = await self._redis.mget([redis_keys.key(i) for i in ids]) if ids else []
        return [Key.from_json(json.loads(raw)) for raw in records if raw is not None], more

    async def update_key(self, key_id: str, change: Callable[[Key], Key]) -> Key:
        """Applies change atomically; a changed secret hash moves the hash index with it."""
        return await self._update(redis_keys.key(key_id), f"key '{key_id}'", Key, change)

    # Helpers

    async def _page(self, index: str, after: str, count: int) -> tuple[list[str], bool]:
        """Up to count members after `after`, in lexicographic order, and whether more follow."""
        start = f"({after}" if after else "-"
        ids = await self._redis.zrange(index, start, "+", bylex=True, offset=0, num=count + 1)
        return ids[:count], len(ids) > count

    async def _update(
        self,
        record_key: str,
        what: str,
        kind: type[Record],
        change: Callable[[Record], Record],
    ) -> Record:
        async with self._redis.pipeline() as pipe:
            while True:
                try:
                    await pipe.watch(record_key)
                    raw = await pipe.get(record_key)
                    if raw is None:
                        raise NotFound(f"{what} not found")
                    before = kind.from_json(json.loads(raw))
                    after = change(before)
                    pipe.multi()
                    pipe.set(record_key, _dump(after))
                    if isinstance(before, Key) and before.secret_sha256 != after.secret_sha256:
                        pipe.delete(redis_keys.key_by_hash(before.secret_sha256))
                        pipe.set(redis_keys.key_by_hash(after.secret_sha256), after.id)
                    await pipe.execute()
                    return after
                except WatchError:
                    continue


def _dump(record: Org | Key) -> str:
    return json.dumps(record.to_json(), separators=(",", ":"))
