"""Vector-store storage fees in Redis: the claim on an org's UTC day that makes one control
plane charge it, the vector stores it is measured over, and the charge itself
(lua/storage_fees.lua), once per org and day. The sweeper's StorageFees decides what to
charge."""

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from controlplane import limiter, usage
from controlplane.charges import spend_ttls
from controlplane.pricing import VECTOR_STORE_STORAGE
from controlplane.redis_access import RedisPart, unavailable_on_connection_error
from prism import redis_keys
from prism.redis_client import AsyncRedis

_STORAGE_FEE = (Path(__file__).with_name("lua") / "storage_fees.lua").read_text()
# Drops a storage-fee claim only if it is still the caller's.
_RELEASE_CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# A day's storage-fee mark outlives the day, so no control plane charges it again.
_STORAGE_CHARGED_SECONDS = 2 * 86_400


class StorageFeeClaims(RedisPart):
    def __init__(self, client: AsyncRedis) -> None:
        super().__init__(client)
        self._storage_fee = client.register_script(_STORAGE_FEE)
        self._release_claim = client.register_script(_RELEASE_CLAIM)

    @unavailable_on_connection_error
    async def claim_storage_fees(
        self, org_ids: Sequence[str], day: str, token: str, for_ms: int
    ) -> list[str]:
        """Of the orgs given (in one pipelined round trip), those whose storage of the day
        this caller now holds for for_ms: at most one caller does, and none once charged."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for org_id in org_ids:
                pipe.set(redis_keys.storage_fee(org_id, day), token, nx=True, px=for_ms)
            answers = await pipe.execute()
        return [org_id for org_id, won in zip(org_ids, answers, strict=True) if won]

    @unavailable_on_connection_error
    async def release_storage_fee(self, org_id: str, day: str, token: str) -> None:
        """Gives up the claim, so that a later sweep (here or elsewhere) retries the day."""
        await self._release_claim(keys=[redis_keys.storage_fee(org_id, day)], args=[token])

    @unavailable_on_connection_error
    async def vector_store_ids(self, org_id: str) -> list[str]:
        """The vector stores the org created through the gateway and has not deleted. The
        objects hash holds every kind of object, so it is scanned, not read at once."""
        return [
            object_id
            async for object_id, kind in self._redis.hscan_iter(
                redis_keys.objects(org_id), count=1000
            )
            if kind == "vector_store"
        ]

    @unavailable_on_connection_error
    async def forget_object(self, org_id: str, object_id: str) -> None:
        await self._redis.hdel(redis_keys.objects(org_id), object_id)

    @unavailable_on_connection_error
    async def charge_storage_fee(
        self, org_id: str, at: datetime, token: str, cost_micros: int
    ) -> bool:
        """Runs lua/storage_fees.lua: the day's storage charged to the org (its spend and
        usage, under no key), if the caller still holds the day's claim; whether it did."""
        counters = limiter.spend_counters(org_id, None, at)
        day = usage.day_of(at)
        spec = {
            "token": token,
            "cost": cost_micros,
            "field": usage.field_name("", VECTOR_STORE_STORAGE, "cost"),
            "charged_ttl": _STORAGE_CHARGED_SECONDS,
            "usage_ttl": usage.RETENTION_SECONDS,
            "spend_ttls": spend_ttls(counters),
        }
        keys = [
            redis_keys.storage_fee(org_id, day),
            redis_keys.usage(org_id, day),
            *(name for name, _ in counters),
        ]
        return bool(await self._storage_fee(keys=keys, args=[json.dumps(spec)]))
