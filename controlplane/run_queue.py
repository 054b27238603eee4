"""The sweeper's queue in Redis: each org's runs pending a charge (lua/record.lua adds a run
when a response shows it created, and removes it when a response charges it), the claim a
sweeper takes on one, who created it, and giving one up (with its budget reservation)."""

from collections.abc import Sequence
from pathlib import Path

from controlplane.redis_access import RedisPart, unavailable_on_connection_error
from controlplane.reservations import RESERVATIONS_LUA
from prism import redis_keys
from prism.redis_client import AsyncRedis

_FORGET = RESERVATIONS_LUA + (Path(__file__).with_name("lua") / "forget_run.lua").read_text()


class RunQueue(RedisPart):
    def __init__(self, client: AsyncRedis) -> None:
        super().__init__(client)
        self._forget = client.register_script(_FORGET)

    @unavailable_on_connection_error
    async def pending_runs(
        self, org_ids: Sequence[str], created_before_ms: float, per_org: int
    ) -> list[tuple[str, str, float]]:
        """(org id, run id, created ms) of up to per_org runs per org created before then
        and not yet charged, oldest first."""
        found: list[tuple[str, str, float]] = []
        for start in range(0, len(org_ids), 1000):
            batch = org_ids[start : start + 1000]
            async with self._redis.pipeline(transaction=False) as pipe:
                for org_id in batch:
                    pipe.zrangebyscore(
                        redis_keys.pending_runs(org_id),
                        "-inf",
                        created_before_ms,
                        start=0,
                        num=per_org,
                        withscores=True,
                    )
                answers = await pipe.execute()
            for org_id, runs in zip(batch, answers, strict=True):
                found += [(org_id, run_id, created) for run_id, created in runs]
        return found

    @unavailable_on_connection_error
    async def claim_run(self, org_id: str, run_id: str, for_ms: int) -> bool:
        """Whether this caller now holds the run for for_ms: at most one does."""
        return bool(
            await self._redis.set(redis_keys.sweep_claim(org_id, run_id), "1", nx=True, px=for_ms)
        )

    @unavailable_on_connection_error
    async def run_origin(self, org_id: str, run_id: str) -> tuple[str, str]:
        """The key that created the run and its thread ("" when unknown)."""
        key_id, thread_id = await self._redis.hmget(redis_keys.run(org_id, run_id), "key", "thread")
        return key_id or "", thread_id or ""

    @unavailable_on_connection_error
    async def forget_pending(self, org_id: str, run_id: str) -> None:
        """The run will not be charged: out of the queue, and its budget reservation gone."""
        keys = [redis_keys.pending_runs(org_id), *redis_keys.reservation_keys(org_id)]
        await self._forget(keys=keys, args=[run_id])
