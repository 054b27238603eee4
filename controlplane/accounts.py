"""Orgs and keys in Redis, under the names in prism.redis_keys: their records, the indexes
that list them, the secret-hash index that finds a key, and the key grants are signed with.

Records are JSON strings. What lives in an org's Cluster slot (its record, its keys' records,
the index of its keys) is written in MULTI/EXEC transactions, with WATCH on what they read
(redis-py's `transaction`, which retries when a watched key changes), so concurrent admin
calls on any replica cannot interleave. The global indexes (every org, every key, a key's
org, a secret's hash) are in other slots, so they are written in ordered steps after it: a
record is written before the entries that find it and deleted before them. A call that dies
between steps leaves entries without a record, which every reader treats as absent (listings
also remove them), or a record not yet in a global index, which the call made again repairs.
A secret's hash entry is only trusted when the key's record has that hash.
"""

import base64
import json
import secrets
from collections.abc import Callable
from typing import TypeVar

from redis.asyncio.client import Pipeline

from controlplane.errors import AlreadyExists, FailedPrecondition, NotFound
from controlplane.records import KeyRecord, OrgRecord
from controlplane.redis_access import RedisPart, page_of_ids, unavailable_on_connection_error
from prism import redis_keys
from prism.redis_client import get_many

Record = TypeVar("Record", OrgRecord, KeyRecord)


class Accounts(RedisPart):
    @unavailable_on_connection_error
    async def grant_key(self) -> bytes:
        """The key every control plane signs grants with: made by the first to ask (SET NX),
        read by the others."""
        await self._redis.set(
            redis_keys.GRANT_KEY, base64.b64encode(secrets.token_bytes(32)).decode(), nx=True
        )
        return base64.b64decode(await self._redis.get(redis_keys.GRANT_KEY))

    @unavailable_on_connection_error
    async def find_key(self, secret_sha256: str) -> tuple[str, str] | None:
        """The org id and key id of the key with this secret hash, if any."""
        found = await self._redis.get(redis_keys.key_by_hash(secret_sha256))
        if found is None:
            return None
        org_id, key_id = found.split(" ")
        return org_id, key_id

    @unavailable_on_connection_error
    async def load_raw(self, org_id: str, key_id: str) -> tuple[str, str] | None:
        """The key's and its org's records as stored (JSON), or None if either is gone."""
        key_json, org_json = await self._redis.mget(
            redis_keys.key(org_id, key_id), redis_keys.org(org_id)
        )
        if key_json is None or org_json is None:
            return None
        return key_json, org_json

    # Orgs

    @unavailable_on_connection_error
    async def create_org(self, org: OrgRecord) -> None:
        created = await self._redis.set(redis_keys.org(org.id), _dump(org), nx=True)
        # Also when the id is taken: a CreateOrg that died after writing the record is
        # finished by the next one, which then answers ALREADY_EXISTS.
        await self._redis.zadd(redis_keys.ORGS, {org.id: 0})
        if not created:
            raise AlreadyExists(f"org '{org.id}' already exists; choose another org_id")

    @unavailable_on_connection_error
    async def get_org(self, org_id: str) -> OrgRecord:
        raw = await self._redis.get(redis_keys.org(org_id))
        if raw is None:
            raise NotFound(f"org '{org_id}' not found")
        return OrgRecord.from_json(json.loads(raw))

    @unavailable_on_connection_error
    async def org_ids(self) -> list[str]:
        return await self._redis.zrange(redis_keys.ORGS, 0, -1)

    @unavailable_on_connection_error
    async def list_orgs(self, after: str, count: int) -> tuple[list[OrgRecord], str]:
        """Up to count orgs with ids after `after`, and the id the next page starts after
        ("" when this is the last page)."""
        ids, next_after = await page_of_ids(self._redis, redis_keys.ORGS, after, count)
        records = await get_many(self._redis, [redis_keys.org(i) for i in ids])
        await self._drop_org_entries([i for i, raw in zip(ids, records, strict=True) if not raw])
        orgs = [OrgRecord.from_json(json.loads(raw)) for raw in records if raw is not None]
        return orgs, next_after

    @unavailable_on_connection_error
    async def update_org(self, org_id: str, change: Callable[[OrgRecord], OrgRecord]) -> OrgRecord:
        return await self._update(redis_keys.org(org_id), f"org '{org_id}'", OrgRecord, change)

    @unavailable_on_connection_error
    async def delete_org(self, org_id: str, *, force: bool) -> None:
        await self._delete_org_and_keys(org_id, force=force)
        await self._delete_org_leftovers(org_id)

    # Keys

    @unavailable_on_connection_error
    async def create_key(self, key: KeyRecord) -> None:
        org_key = redis_keys.org(key.org_id)

        async def create(pipe: Pipeline) -> None:
            if await pipe.get(org_key) is None:
                raise NotFound(f"org '{key.org_id}' not found; create it first")
            pipe.multi()
            pipe.set(redis_keys.key(key.org_id, key.id), _dump(key))
            pipe.zadd(redis_keys.org_keys(key.org_id), {key.id: 0})

        # Watching the org makes a concurrent DeleteOrg and this create exclusive. (GET, not
        # EXISTS, in the transactions here: redis-py's cluster transactions leave an EXISTS
        # before MULTI unsent, answering the pipeline itself.)
        await self._redis.transaction(create, org_key)
        await self._add_key_entries(key.org_id, [key.id])
        # Last: the secret works once everything that finds its key is written.
        await self._redis.set(redis_keys.key_by_hash(key.secret_sha256), f"{key.org_id} {key.id}")

    @unavailable_on_connection_error
    async def get_key(self, key_id: str) -> KeyRecord:
        raw = await self._redis.get(await self._key_record_name(key_id))
        if raw is None:
            raise NotFound(f"key '{key_id}' not found")
        return KeyRecord.from_json(json.loads(raw))

    @unavailable_on_connection_error
    async def list_keys(self, org_id: str, after: str, count: int) -> tuple[list[KeyRecord], str]:
        """Like list_orgs, for the keys of org_id, or of every org when it is empty."""
        if org_id:
            await self.get_org(org_id)
            ids, next_after = await page_of_ids(
                self._redis, redis_keys.org_keys(org_id), after, count
            )
            records = await get_many(self._redis, [redis_keys.key(org_id, i) for i in ids])
            await self._index_keys(org_id, [i for i, r in zip(ids, records, strict=True) if r])
        else:
            ids, next_after = await page_of_ids(self._redis, redis_keys.KEYS, after, count)
            orgs = await self._redis.hmget(redis_keys.KEY_ORGS, ids) if ids else []
            located = [(org, i) for org, i in zip(orgs, ids, strict=True) if org]
            records = await get_many(self._redis, [redis_keys.key(org, i) for org, i in located])
            gone = [i for org, i in zip(orgs, ids, strict=True) if not org]
            gone += [i for (_, i), raw in zip(located, records, strict=True) if raw is None]
            await self._drop_key_entries(gone)
        found = [KeyRecord.from_json(json.loads(raw)) for raw in records if raw is not None]
        return found, next_after

    @unavailable_on_connection_error
    async def update_key(self, key_id: str, change: Callable[[KeyRecord], KeyRecord]) -> KeyRecord:
        """Applies change atomically; a changed secret hash moves the hash index with it."""
        record_name = await self._key_record_name(key_id)
        return await self._update(record_name, f"key '{key_id}'", KeyRecord, change)

    # Helpers

    async def _delete_org_and_keys(self, org_id: str, *, force: bool) -> None:
        """The org's record, its keys' records and the index of them, in one transaction
        (FailedPrecondition when it has keys and force is not set); then the global index
        entries of them, which find nothing once the records are gone."""
        org_key, keys_key = redis_keys.org(org_id), redis_keys.org_keys(org_id)

        async def delete(pipe: Pipeline) -> tuple[list[str], list[str]]:
            if await pipe.get(org_key) is None:
                raise NotFound(f"org '{org_id}' not found")
            key_ids = await pipe.zrange(keys_key, 0, -1)
            if key_ids and not force:
                count = f"{len(key_ids)} key" + ("s" if len(key_ids) > 1 else "")
                raise FailedPrecondition(
                    f"org '{org_id}' still has {count}; set force to delete the org "
                    "together with its keys"
                )
            record_keys = [redis_keys.key(org_id, i) for i in key_ids]
            if record_keys:
                # A concurrent RotateKey would otherwise leave its new hash behind.
                await pipe.watch(*record_keys)
            # One GET each: a cluster's transactions take no MGET.
            records = [await pipe.get(name) for name in record_keys]
            pipe.multi()
            if key_ids:
                pipe.delete(*record_keys)
            pipe.delete(org_key, keys_key)
            hashes = [json.loads(raw)["secret_sha256"] for raw in records if raw is not None]
            return key_ids, hashes

        key_ids, hashes = await self._redis.transaction(
            delete, org_key, keys_key, value_from_callable=True
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            for secret_sha256 in hashes:
                pipe.delete(redis_keys.key_by_hash(secret_sha256))
            if key_ids:
                pipe.zrem(redis_keys.KEYS, *key_ids)
                pipe.hdel(redis_keys.KEY_ORGS, *key_ids)
            pipe.zrem(redis_keys.ORGS, org_id)
            await pipe.execute()

    async def _delete_org_leftovers(self, org_id: str) -> None:
        """What the org's requests left (ownership, counters, spend). Without its record and
        keys nothing can reach it, so this need not be atomic; an org created again with the
        same id meanwhile keeps its new record and keys."""
        kept = (redis_keys.org(org_id), redis_keys.org_keys(org_id), redis_keys.key(org_id, ""))
        leftovers = [
            name
            async for name in self._redis.scan_iter(redis_keys.org_data(org_id), count=1000)
            if not name.startswith(kept)
        ]
        for start in range(0, len(leftovers), 500):
            await self._redis.unlink(*leftovers[start : start + 500])

    async def _drop_org_entries(self, org_ids: list[str]) -> None:
        """Removes ORGS entries whose record a listing found missing (a DeleteOrg that died
        before removing them). An org created again with the id meanwhile wrote its record
        before its entry, so reading the record after the removal sees it and re-adds it."""
        if not org_ids:
            return
        await self._redis.zrem(redis_keys.ORGS, *org_ids)
        records = await get_many(self._redis, [redis_keys.org(i) for i in org_ids])
        back = {i: 0 for i, raw in zip(org_ids, records, strict=True) if raw is not None}
        if back:
            await self._redis.zadd(redis_keys.ORGS, back)

    async def _add_key_entries(self, org_id: str, key_ids: list[str]) -> None:
        # Where a key is before the list of every key, so that list never holds a key id
        # that a key in the making has not located yet (the listing drops such an entry).
        await self._redis.hset(redis_keys.KEY_ORGS, mapping=dict.fromkeys(key_ids, org_id))
        await self._redis.zadd(redis_keys.KEYS, dict.fromkeys(key_ids, 0))

    async def _index_keys(self, org_id: str, key_ids: list[str]) -> None:
        """Adds the global entries an org's listed keys lack: a CreateKey that died after
        writing the key's record left them out (its secret, which nobody got, stays unknown)."""
        if not key_ids:
            return
        located = await self._redis.hmget(redis_keys.KEY_ORGS, key_ids)
        missing = [i for i, org in zip(key_ids, located, strict=True) if org is None]
        if missing:
            await self._add_key_entries(org_id, missing)

    async def _drop_key_entries(self, key_ids: list[str]) -> None:
        """Removes the global entries of keys whose record a listing found missing. Key ids
        are never reused, so no key can come back under one."""
        if not key_ids:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrem(redis_keys.KEYS, *key_ids)
            pipe.hdel(redis_keys.KEY_ORGS, *key_ids)
            await pipe.execute()

    async def _key_record_name(self, key_id: str) -> str:
        org_id = await self._redis.hget(redis_keys.KEY_ORGS, key_id)
        if org_id is None:
            raise NotFound(f"key '{key_id}' not found")
        return redis_keys.key(org_id, key_id)

    async def _update(
        self,
        record_key: str,
        what: str,
        kind: type[Record],
        change: Callable[[Record], Record],
    ) -> Record:
        """change(current) written back atomically; when change returns its argument
        unchanged (an idempotent RevokeKey), nothing is written."""

        async def update(pipe: Pipeline) -> tuple[Record, Record]:
            raw = await pipe.get(record_key)
            if raw is None:
                raise NotFound(f"{what} not found")
            before = kind.from_json(json.loads(raw))
            after = change(before)
            pipe.multi()
            if after is not before:
                pipe.set(record_key, _dump(after))
            return before, after

        before, after = await self._redis.transaction(update, record_key, value_from_callable=True)
        if (
            isinstance(before, KeyRecord)
            and isinstance(after, KeyRecord)
            and (before.secret_sha256 != after.secret_sha256)
        ):
            # The record first, so the old hash's entry, until deleted here, names a key whose
            # record no longer has it (refused, as KnownKeys compares them); the new secret
            # works once its entry is written.
            await self._redis.set(
                redis_keys.key_by_hash(after.secret_sha256), f"{after.org_id} {after.id}"
            )
            await self._redis.delete(redis_keys.key_by_hash(before.secret_sha256))
        return after


def _dump(record: OrgRecord | KeyRecord) -> str:
    return json.dumps(record.to_json(), separators=(",", ":"))
