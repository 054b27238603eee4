"""The run queue in Redis, shared by every engine process.

A run to work on is an entry `thread_id/run_id` in a list. A worker claims one by popping it
and leasing it in the same script, so no entry is ever out of both; while it works it renews
the lease. An entry whose lease ran out (its worker died or hung) goes back to the list, and
after MAX_CLAIMS claims the run is handed back as given up, so a run that kills its workers
ends `failed` instead of going round for ever.

Idle workers do not poll: each entry queued (or put back) also pushes a token to a wake-up
list, on which idle workers block; a woken worker then claims as above. A token is only a
hint (a busy worker may have claimed the entry already), so the list is capped, and a
worker's wait has a timeout, after which it looks for expired leases.
"""

import time
from dataclasses import dataclass

from prism import redis_keys as keys
from prism.redis_client import AsyncRedis

# A run claimed this many times without finishing is given up.
MAX_CLAIMS = 3
# Wake-up tokens kept at most: stale ones (their entry claimed by a busy worker) only cost
# an idle worker one empty claim, but must not pile up.
_WAKE_TOKENS_KEPT = 64

# KEYS: waiting list, leases, claims. ARGV: lease end (ms).
# Returns the entry and how many times it has been claimed, or nil.
_CLAIM = """
local entry = redis.call('LPOP', KEYS[1])
if not entry then return nil end
redis.call('ZADD', KEYS[2], ARGV[1], entry)
local claims = redis.call('HINCRBY', KEYS[3], entry, 1)
return {entry, claims}
"""

# KEYS: waiting list, leases, wake-up list. ARGV: now (ms), most entries to move, most
# wake-up tokens kept. Moves entries whose lease has ended back to the front of the list,
# waking a worker for each; returns how many.
_REQUEUE_EXPIRED = """
local expired = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
for _, entry in ipairs(expired) do
  redis.call('ZREM', KEYS[2], entry)
  redis.call('LPUSH', KEYS[1], entry)
  redis.call('RPUSH', KEYS[3], '1')
end
if #expired > 0 then redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1) end
return #expired
"""

# KEYS: leases. ARGV: entry, new lease end (ms). Renews only a lease still held.
_RENEW = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Claim:
    thread_id: str
    run_id: str
    # 1 the first time this run is worked on; more when earlier workers died.
    claims: int

    @property
    def entry(self) -> str:
        return _entry(self.thread_id, self.run_id)

    @property
    def given_up(self) -> bool:
        return self.claims > MAX_CLAIMS


def _entry(thread_id: str, run_id: str) -> str:
    return f"{thread_id}/{run_id}"


def _now_ms() -> int:
    return int(time.time() * 1000)


class RunQueue:
    def __init__(self, redis: AsyncRedis, lease_seconds: float) -> None:
        self._redis = redis
        self.lease_seconds = lease_seconds
        self._claim = redis.register_script(_CLAIM)
        self._requeue = redis.register_script(_REQUEUE_EXPIRED)
        self._renew = redis.register_script(_RENEW)

    async def push(self, thread_id: str, run_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(keys.ENGINE_RUN_QUEUE, _entry(thread_id, run_id))
            pipe.rpush(keys.ENGINE_RUN_WAKE, "1")
            pipe.ltrim(keys.ENGINE_RUN_WAKE, -_WAKE_TOKENS_KEPT, -1)
            await pipe.execute()

    async def wait(self, timeout_seconds: int) -> None:
        """Blocks until a run may be waiting (a wake-up token) or the timeout passes. A run
        queued between an empty claim and this wait left its token, so it is not missed."""
        await self._redis.blpop([keys.ENGINE_RUN_WAKE], timeout=timeout_seconds)

    async def claim(self) -> Claim | None:
        """The next waiting run, leased to the caller; None when none waits."""
        until = _now_ms() + int(self.lease_seconds * 1000)
        claimed = await self._claim(
            keys=[keys.ENGINE_RUN_QUEUE, keys.ENGINE_RUN_LEASES, keys.ENGINE_RUN_CLAIMS],
            args=[until],
        )
        if claimed is None:
            return None
        entry, claims = claimed
        thread_id, _, run_id = entry.partition("/")
        return Claim(thread_id, run_id, int(claims))

    async def renew(self, claim: Claim) -> bool:
        """Extends the lease; False when it was lost (it ran out and went back to the list)."""
        until = _now_ms() + int(self.lease_seconds * 1000)
        return bool(await self._renew(keys=[keys.ENGINE_RUN_LEASES], args=[claim.entry, until]))

    async def release(self, claim: Claim) -> None:
        """Ends the lease and its claim count: the run ended, or waits for tool outputs,
        whose submission queues it afresh."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.ENGINE_RUN_LEASES, claim.entry)
            pipe.hdel(keys.ENGINE_RUN_CLAIMS, claim.entry)
            await pipe.execute()

    async def requeue_expired(self, batch: int = 20) -> int:
        """Puts runs whose worker stopped renewing back in the list; how many."""
        return int(
            await self._requeue(
                keys=[keys.ENGINE_RUN_QUEUE, keys.ENGINE_RUN_LEASES, keys.ENGINE_RUN_WAKE],
                args=[_now_ms(), batch, _WAKE_TOKENS_KEPT],
            )
        )
