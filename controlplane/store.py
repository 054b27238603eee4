"""Orgs and keys in Redis, under the names in prism.redis_keys.

Records are JSON strings. Writes that touch several keys run in MULTI/EXEC transactions,
with WATCH on what they read (redis-py's `transaction`, which retries when a watched key
changes), so concurrent admin calls on any replica cannot interleave;
nothing is cached in the process, so replicas never disagree.
"""

import base64
import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from controlplane import limiter, usage
from controlplane.check_script import CheckAnswer, CheckArgs
from controlplane.errors import (
    AlreadyExists,
    CountersUnavailable,
    FailedPrecondition,
    NotFound,
    Unavailable,
)
from controlplane.limit_kinds import ALGORITHMS_LUA
from controlplane.limiter import Budget, Counter
from controlplane.pricing import (
    BUILT_IN_TOOL_FEES,
    VECTOR_STORE_STORAGE,
    Price,
    RunCharge,
    StepCharge,
    ToolFees,
)
from controlplane.records import KeyRecord, OrgRecord, now
from prism import redis_keys
from prism.runs import CHARGE_WINDOW_SECONDS

Params = ParamSpec("Params")
Result = TypeVar("Result")
Record = TypeVar("Record", OrgRecord, KeyRecord)

_LUA = Path(__file__).with_name("lua")
_VERIFY = (_LUA / "verify.lua").read_text()
# Read-only, so Redis runs it even when it refuses writes (out of memory, a replica).
_VERIFY_ALONE = "#!lua flags=no-writes\n" + _VERIFY + "return cjson.encode({outcome = 'ok'})\n"
_CHECK = _VERIFY + ALGORITHMS_LUA + (_LUA / "check.lua").read_text()
_RECORD = (_LUA / "record.lua").read_text()
_STORAGE_FEE = (_LUA / "storage_fee.lua").read_text()
# Runs' hashes (their creator and charge) and steps' markers are kept this long: a run
# shown again within it is not charged again, and no run created longer ago is charged.
RUN_MEMORY_MS = (CHARGE_WINDOW_SECONDS + 2 * 86_400) * 1000

_CREATE_ORG = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('ZADD', KEYS[2], 0, ARGV[2])
  return 1
end
return 0
"""
# Drops a storage-fee claim only if it is still the caller's.
_RELEASE_CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# A day's storage-fee mark outlives the day, so no control plane charges it again.
_STORAGE_CHARGED_SECONDS = 2 * 86_400


@dataclass(frozen=True)
class ChargeFacts:
    """What charging a response's runs and steps reads first, in one round trip."""

    # The requesting key's and its org's records (JSON), None if either is gone.
    records: tuple[str, str] | None
    # SetModelPrice's prices, of the models asked about.
    prices: dict[str, Price]
    tool_fees: ToolFees
    # Run id -> the key that created it, for the runs whose creation was recorded.
    creators: dict[str, str]


@dataclass(frozen=True)
class Recorded:
    # Per run given, its charge as first made, and whether this call made it.
    charges: list[RunCharge]
    new: list[bool]
    # Per step given, the micro-USD newly charged for its file_search calls and for a
    # code_interpreter session.
    step_micros: list[tuple[int, int]]


def unavailable_on_connection_error(
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
        self._create_org = client.register_script(_CREATE_ORG)
        self._verify = client.register_script(_VERIFY_ALONE)
        self._check = client.register_script(_CHECK)
        self._record = client.register_script(_RECORD)
        self._storage_fee = client.register_script(_STORAGE_FEE)
        self._release_claim = client.register_script(_RELEASE_CLAIM)

    @property
    def client(self) -> redis.Redis:
        """The connection pool, for readers of data the Store does not model (request_logs)."""
        return self._redis

    @unavailable_on_connection_error
    async def ping(self) -> None:
        await self._redis.ping()

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

    # A request's decision and what its response showed

    @unavailable_on_connection_error
    async def decide(
        self,
        org_id: str,
        key_id: str,
        args: CheckArgs,
        budgets: Sequence[Budget] = (),
        counters: Sequence[Counter] = (),
        *,
        count: bool,
    ) -> CheckAnswer:
        """Runs lua/verify.lua, and lua/check.lua after it when count is set, on the org's
        records and counters, asked `args`. CountersUnavailable when Redis refuses the
        counters' writes."""
        keys = [
            redis_keys.key(org_id, key_id),
            redis_keys.org(org_id),
            redis_keys.objects(org_id),
            redis_keys.object_models(org_id),
        ]
        if not count:
            return CheckAnswer.from_script(
                await self._verify(keys=keys, args=[json.dumps(args.to_script())])
            )
        spec = {
            **args.to_script(),
            "budgets": [budget.limit_micro_usd for budget in budgets],
            "counters": [counter.script_spec() for counter in counters],
        }
        keys += [budget.redis_key for budget in budgets]
        keys += [counter.redis_key for counter in counters]
        spec["usage"] = {**spec["usage"], "ttl": usage.RETENTION_SECONDS}
        keys.append(redis_keys.usage(org_id, usage.day_of(now())))
        try:
            answer = await self._check(keys=keys, args=[json.dumps(spec)])
        except ResponseError as error:
            # Out of memory, a read-only replica: the records may still be readable.
            raise CountersUnavailable(f"Redis refused the rate-limit counters: {error}") from None
        return CheckAnswer.from_script(answer)

    @unavailable_on_connection_error
    async def charge_facts(
        self, org_id: str, key_id: str, models: Sequence[str], run_ids: Sequence[str]
    ) -> ChargeFacts:
        """The records, prices, tool fees and run creators a Record with runs or steps
        needs, read in one pipelined round trip."""
        wanted_models = list(dict.fromkeys(models))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.mget(redis_keys.key(org_id, key_id), redis_keys.org(org_id))
            if wanted_models:
                pipe.hmget(redis_keys.MODEL_PRICES, wanted_models)
            pipe.get(redis_keys.TOOL_FEES)
            for run_id in run_ids:
                pipe.hget(redis_keys.run(org_id, run_id), "key")
            answers = await pipe.execute()
        (key_json, org_json), rest = answers[0], answers[1:]
        prices: dict[str, Price] = {}
        if wanted_models:
            found, rest = rest[0], rest[1:]
            prices = {
                model: Price.from_json(json.loads(raw))
                for model, raw in zip(wanted_models, found, strict=True)
                if raw is not None
            }
        fees = ToolFees.from_json(json.loads(rest[0])) if rest[0] else BUILT_IN_TOOL_FEES
        creators = {run_id: key for run_id, key in zip(run_ids, rest[1:], strict=True) if key}
        records = (key_json, org_json) if key_json and org_json else None
        return ChargeFacts(records, prices, fees, creators)

    @unavailable_on_connection_error
    async def record(
        self,
        org_id: str,
        key_id: str,
        request_id: str,
        objects: Sequence[tuple[str, str, str, str]],
        deleted: Sequence[str],
        runs: Sequence[RunCharge] = (),
        steps: Sequence[StepCharge] = (),
        token_counters: Sequence[Counter] = (),
        slot_sets: Sequence[str] = (),
    ) -> Recorded:
        """Runs lua/record.lua: objects (id, kind, model, thread) now owned by the org (runs
        pending until charged), objects gone, runs and steps charged (each once: a run
        already charged answers its first charge), and the release of the request's
        concurrency slots."""
        at = now()
        spend_ttls = [ttl or -1 for _, ttl in limiter.spend_counters(org_id, key_id, at)]
        spec = {
            "key_id": key_id,
            "objects": [list(item) for item in objects],
            "deleted": list(deleted),
            "runs": [
                {
                    "id": run.run_id,
                    "tokens": run.total_tokens,
                    "model": run.model,
                    "prompt": run.prompt_tokens,
                    "cached": run.cached_tokens,
                    "completion": run.completion_tokens,
                    "cost": run.cost_micros,
                    "priced": run.priced,
                    "key": run.key_id,
                }
                for run in runs
            ],
            "steps": [
                {
                    "file_search_calls": step.file_search_calls,
                    "file_search_cost": step.file_search_micros,
                    "code_interpreter": step.code_interpreter,
                    "code_cost": step.code_interpreter_micros,
                    "key": step.key_id,
                }
                for step in steps
            ],
            "spend_ttls": spend_ttls,
            "run_ttl": RUN_MEMORY_MS,
            "usage_ttl": usage.RETENTION_SECONDS,
            "token_counters": [
                {"limit": counter.limit, "period": counter.kind.period_ms}
                for counter in token_counters
            ],
            "request_id": request_id,
            "slots": len(slot_sets),
        }
        keys = [
            redis_keys.objects(org_id),
            redis_keys.object_models(org_id),
            redis_keys.pending_runs(org_id),
            redis_keys.usage(org_id, usage.day_of(at)),
            *(redis_keys.run(org_id, item[0]) for item in objects if item[1] == "run"),
        ]
        for run in runs:
            keys.append(redis_keys.run(org_id, run.run_id))
            keys += [name for name, _ in limiter.spend_counters(org_id, run.key_id, at)]
        for step in steps:
            keys.append(redis_keys.step_charged(org_id, step.step_id))
            keys.append(redis_keys.code_session(org_id, step.thread_id))
            keys += [name for name, _ in limiter.spend_counters(org_id, step.key_id, at)]
        keys += [counter.redis_key for counter in token_counters]
        keys += slot_sets
        # cjson encodes an empty Lua table as an object, and an empty JSON array decodes to
        # one; the script only iterates, and empty answers are read as empty lists.
        answer = json.loads(await self._record(keys=keys, args=[json.dumps(spec)]))
        charges = [
            _charge(run.run_id, json.loads(raw))
            for run, raw in zip(runs, answer["charges"] or [], strict=True)
        ]
        return Recorded(
            charges,
            list(answer["new"] or []),
            [(int(fs), int(ci)) for fs, ci in answer["steps"] or []],
        )

    @unavailable_on_connection_error
    async def filter_owned(self, org_id: str, ids: Sequence[str]) -> list[str]:
        if not ids:
            return []
        kinds = await self._redis.hmget(redis_keys.objects(org_id), list(ids))
        return [object_id for object_id, kind in zip(ids, kinds, strict=True) if kind]

    @unavailable_on_connection_error
    async def add_spend(self, org_id: str, key_id: str, micro_usd: int, at: datetime) -> None:
        """Adds a charge to the key's and org's spend of that day, month and all time, which
        budgets are checked against."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for name, ttl in limiter.spend_counters(org_id, key_id, at):
                pipe.incrby(name, micro_usd)
                if ttl is not None:
                    pipe.expire(name, ttl)
            await pipe.execute()

    # Prices and usage

    @unavailable_on_connection_error
    async def set_model_price(self, model: str, price: Price) -> None:
        await self._redis.hset(redis_keys.MODEL_PRICES, model, json.dumps(price.to_json()))

    @unavailable_on_connection_error
    async def model_prices(self) -> dict[str, Price]:
        """The prices SetModelPrice set, by model."""
        stored = await self._redis.hgetall(redis_keys.MODEL_PRICES)
        return {model: Price.from_json(json.loads(raw)) for model, raw in stored.items()}

    @unavailable_on_connection_error
    async def set_tool_fees(self, fees: ToolFees) -> None:
        await self._redis.set(redis_keys.TOOL_FEES, json.dumps(fees.to_json()))

    @unavailable_on_connection_error
    async def tool_fees(self) -> ToolFees:
        raw = await self._redis.get(redis_keys.TOOL_FEES)
        return ToolFees.from_json(json.loads(raw)) if raw else BUILT_IN_TOOL_FEES

    @unavailable_on_connection_error
    async def usage(
        self, org_ids: Sequence[str], days: Sequence[str]
    ) -> list[tuple[str, str, dict[str, str]]]:
        """(day, org id, usage hash) of every org and day asked, pipelined in batches."""
        pairs = [(day, org_id) for org_id in org_ids for day in days]
        found: list[tuple[str, str, dict[str, str]]] = []
        for start in range(0, len(pairs), 1000):
            batch = pairs[start : start + 1000]
            async with self._redis.pipeline(transaction=False) as pipe:
                for day, org_id in batch:
                    pipe.hgetall(redis_keys.usage(org_id, day))
                hashes = await pipe.execute()
            found += [
                (day, org_id, counted)
                for (day, org_id), counted in zip(batch, hashes, strict=True)
                if counted
            ]
        return found

    @unavailable_on_connection_error
    async def org_ids(self) -> list[str]:
        return await self._redis.zrange(redis_keys.ORGS, 0, -1)

    # The sweeper's pending runs

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
        await self._redis.zrem(redis_keys.pending_runs(org_id), run_id)

    # Vector-store storage fees

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
        """Runs lua/storage_fee.lua: the day's storage charged to the org (its spend and
        usage, under no key), if the caller still holds the day's claim; whether it did."""
        counters = limiter.spend_counters(org_id, None, at)
        day = usage.day_of(at)
        spec = {
            "token": token,
            "cost": cost_micros,
            "field": usage.field_name("", VECTOR_STORE_STORAGE, "cost"),
            "charged_ttl": _STORAGE_CHARGED_SECONDS,
            "usage_ttl": usage.RETENTION_SECONDS,
            "spend_ttls": [ttl or -1 for _, ttl in counters],
        }
        keys = [
            redis_keys.storage_fee(org_id, day),
            redis_keys.usage(org_id, day),
            *(name for name, _ in counters),
        ]
        return bool(await self._storage_fee(keys=keys, args=[json.dumps(spec)]))

    # Orgs

    @unavailable_on_connection_error
    async def create_org(self, org: OrgRecord) -> None:
        created = await self._create_org(
            keys=[redis_keys.org(org.id), redis_keys.ORGS], args=[_dump(org), org.id]
        )
        if not created:
            raise AlreadyExists(f"org '{org.id}' already exists; choose another org_id")

    @unavailable_on_connection_error
    async def get_org(self, org_id: str) -> OrgRecord:
        raw = await self._redis.get(redis_keys.org(org_id))
        if raw is None:
            raise NotFound(f"org '{org_id}' not found")
        return OrgRecord.from_json(json.loads(raw))

    @unavailable_on_connection_error
    async def list_orgs(self, after: str, count: int) -> tuple[list[OrgRecord], str]:
        """Up to count orgs with ids after `after`, and the id the next page starts after
        ("" when this is the last page)."""
        ids, next_after = await page_of_ids(self._redis, redis_keys.ORGS, after, count)
        records = await self._redis.mget([redis_keys.org(i) for i in ids]) if ids else []
        orgs = [OrgRecord.from_json(json.loads(raw)) for raw in records if raw is not None]
        return orgs, next_after

    @unavailable_on_connection_error
    async def update_org(self, org_id: str, change: Callable[[OrgRecord], OrgRecord]) -> OrgRecord:
        return await self._update(redis_keys.org(org_id), f"org '{org_id}'", OrgRecord, change)

    @unavailable_on_connection_error
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
            record_keys = [redis_keys.key(org_id, i) for i in key_ids]
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
                pipe.hdel(redis_keys.KEY_ORGS, *key_ids)
            pipe.delete(org_key, keys_key)
            pipe.zrem(redis_keys.ORGS, org_id)

        await self._redis.transaction(delete, org_key, keys_key)
        # What the org's requests left (ownership, counters, spend) goes too. Without its
        # record and keys nothing can reach it, so this need not be atomic; an org created
        # again with the same id meanwhile keeps its new record and keys.
        kept = (redis_keys.org(org_id), redis_keys.org_keys(org_id), redis_keys.key(org_id, ""))
        leftovers = [
            name
            async for name in self._redis.scan_iter(redis_keys.org_data(org_id), count=1000)
            if not name.startswith(kept)
        ]
        for start in range(0, len(leftovers), 500):
            await self._redis.unlink(*leftovers[start : start + 500])

    # Keys

    @unavailable_on_connection_error
    async def create_key(self, key: KeyRecord) -> None:
        org_key = redis_keys.org(key.org_id)

        async def create(pipe: Pipeline) -> None:
            if not await pipe.exists(org_key):
                raise NotFound(f"org '{key.org_id}' not found; create it first")
            pipe.multi()
            pipe.set(redis_keys.key(key.org_id, key.id), _dump(key))
            pipe.set(redis_keys.key_by_hash(key.secret_sha256), f"{key.org_id} {key.id}")
            pipe.hset(redis_keys.KEY_ORGS, key.id, key.org_id)
            pipe.zadd(redis_keys.KEYS, {key.id: 0})
            pipe.zadd(redis_keys.org_keys(key.org_id), {key.id: 0})

        # Watching the org makes a concurrent DeleteOrg and this create exclusive.
        await self._redis.transaction(create, org_key)

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
        index = redis_keys.org_keys(org_id) if org_id else redis_keys.KEYS
        ids, next_after = await page_of_ids(self._redis, index, after, count)
        if not ids:
            return [], next_after
        orgs = [org_id] * len(ids) if org_id else await self._redis.hmget(redis_keys.KEY_ORGS, ids)
        names = [redis_keys.key(org, i) for org, i in zip(orgs, ids, strict=True) if org]
        records = await self._redis.mget(names) if names else []
        found = [KeyRecord.from_json(json.loads(raw)) for raw in records if raw is not None]
        return found, next_after

    @unavailable_on_connection_error
    async def update_key(self, key_id: str, change: Callable[[KeyRecord], KeyRecord]) -> KeyRecord:
        """Applies change atomically; a changed secret hash moves the hash index with it."""
        record_name = await self._key_record_name(key_id)
        return await self._update(record_name, f"key '{key_id}'", KeyRecord, change)

    # Helpers

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
                pipe.set(redis_keys.key_by_hash(after.secret_sha256), f"{after.org_id} {after.id}")
            return after

        return await self._redis.transaction(update, record_key, value_from_callable=True)


async def page_of_ids(
    client: redis.Redis, index: str, after: str, count: int
) -> tuple[list[str], str]:
    """Up to count members of a score-0 sorted set after `after` in lexicographic order, and
    the last of them when more follow (records deleted meanwhile are skipped, never the
    cursor)."""
    start = f"({after}" if after else "-"
    ids = await client.zrange(index, start, "+", bylex=True, offset=0, num=count + 1)
    page = ids[:count]
    return page, page[-1] if len(ids) > count else ""


def _dump(record: OrgRecord | KeyRecord) -> str:
    return json.dumps(record.to_json(), separators=(",", ":"))


def _charge(run_id: str, stored: dict[str, Any]) -> RunCharge:
    return RunCharge(
        run_id=run_id,
        model=stored["model"],
        cost_micros=int(stored["cost"]),
        priced=bool(stored["priced"]),
        prompt_tokens=int(stored["prompt"]),
        cached_tokens=int(stored["cached"]),
        completion_tokens=int(stored["completion"]),
        key_id=stored["key"],
    )
