"""Charges in Redis: what charging a response's runs and steps reads first (charge_facts),
the one script that records what a response showed and charges it (lua/record.lua), and
spend added outside a response (add_spend).

A run is charged once, to the key that created it: its charge is kept in its run hash, and
a step's tool calls once, behind a marker; the spend counters (controlplane.limiter) and the
usage hash (controlplane.usage) take the charge in the same script call.
"""

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from controlplane import limiter, usage
from controlplane.grants import LIFETIME_SECONDS
from controlplane.limiter import Counter
from controlplane.prices import stored_price, stored_tool_fees
from controlplane.pricing import Price, RunCharge, StepCharge, ToolFees
from controlplane.records import now
from controlplane.redis_access import RedisPart, unavailable_on_connection_error
from controlplane.reservations import RESERVATIONS_LUA
from prism import redis_keys
from prism.redis_client import AsyncRedis
from prism.runs import CHARGE_WINDOW_SECONDS

_RECORD = RESERVATIONS_LUA + (Path(__file__).with_name("lua") / "record.lua").read_text()
# Runs' hashes (their creator and charge) and steps' markers are kept this long: a run
# shown again within it is not charged again, and no run created longer ago is charged.
RUN_MEMORY_MS = (CHARGE_WINDOW_SECONDS + 2 * 86_400) * 1000


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


class Charges(RedisPart):
    def __init__(self, client: AsyncRedis) -> None:
        super().__init__(client)
        self._record = client.register_script(_RECORD)

    @unavailable_on_connection_error
    async def charge_facts(
        self, org_id: str, key_id: str, models: Sequence[str], run_ids: Sequence[str]
    ) -> ChargeFacts:
        """The records, prices, tool fees and run creators a Record with runs or steps
        needs, read in one pipelined round trip."""
        wanted_models = list(dict.fromkeys(models))
        async with self._redis.pipeline(transaction=False) as pipe:
            # GETs, not an MGET, which a cluster's pipelines refuse.
            pipe.get(redis_keys.key(org_id, key_id))
            pipe.get(redis_keys.org(org_id))
            if wanted_models:
                pipe.hmget(redis_keys.MODEL_PRICES, wanted_models)
            pipe.get(redis_keys.TOOL_FEES)
            for run_id in run_ids:
                pipe.hget(redis_keys.run(org_id, run_id), "key")
            answers = await pipe.execute()
        key_json, org_json, rest = answers[0], answers[1], answers[2:]
        prices: dict[str, Price] = {}
        if wanted_models:
            found, rest = rest[0], rest[1:]
            prices = {
                model: stored_price(raw)
                for model, raw in zip(wanted_models, found, strict=True)
                if raw is not None
            }
        fees = stored_tool_fees(rest[0])
        creators = {run_id: key for run_id, key in zip(run_ids, rest[1:], strict=True) if key}
        records = (key_json, org_json) if key_json and org_json else None
        return ChargeFacts(records, prices, fees, creators)

    @unavailable_on_connection_error
    async def record(
        self,
        org_id: str,
        key_id: str,
        request_id: str,
        sequence: int | None,
        objects: Sequence[tuple[str, str, str, str]],
        deleted: Sequence[str],
        runs: Sequence[RunCharge] = (),
        steps: Sequence[StepCharge] = (),
        token_counters: Sequence[Counter] = (),
        slot_sets: Sequence[str] = (),
        finished: bool = False,
    ) -> Recorded:
        """Runs lua/record.lua: objects (id, kind, model, thread) now owned by the org (runs
        pending until charged), objects gone, runs and steps charged (each once: a run
        already charged answers its first charge), the release of the request's
        concurrency slots, and its budget reservation moved onto the run it created,
        settled with its run's charge or, `finished` without a run, released. The objects
        and deletions of the request's Record `sequence` are applied once, however often it
        is sent; the sweeper's (None) are not marked."""
        at = now()
        spec = {
            "key_id": key_id,
            "objects": [list(item) for item in objects],
            "deleted": list(deleted),
            "runs": [asdict(run) for run in runs],
            "steps": [asdict(step) for step in steps],
            "spend_ttls": spend_ttls(limiter.spend_counters(org_id, key_id, at)),
            "run_ttl": RUN_MEMORY_MS,
            "usage_ttl": usage.RETENTION_SECONDS,
            "usage_separator": usage.FIELD_SEPARATOR,
            "token_counters": [
                {"limit": counter.limit, "period": counter.period_ms} for counter in token_counters
            ],
            "request_id": request_id,
            "slots": len(slot_sets),
            "once": sequence is not None and bool(objects or deleted),
            "once_ttl": LIFETIME_SECONDS * 1000,
            "finished": finished,
        }
        keys = _record_keys(org_id, at, objects, runs, steps)
        keys.insert(4, redis_keys.record_applied(org_id, request_id, sequence or 0))
        keys += [counter.redis_key for counter in token_counters]
        keys += slot_sets
        keys += redis_keys.reservation_keys(org_id)
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
    async def add_spend(self, org_id: str, key_id: str, micro_usd: int, at: datetime) -> None:
        """Adds a charge to the key's and org's spend of that day, month and all time, which
        budgets are checked against."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for name, ttl in limiter.spend_counters(org_id, key_id, at):
                pipe.incrby(name, micro_usd)
                if ttl is not None:
                    pipe.expire(name, ttl)
            await pipe.execute()


def spend_ttls(counters: Sequence[tuple[str, int | None]]) -> list[int]:
    """The spend counters' TTLs as the scripts take them: -1 for one kept for ever."""
    return [ttl or -1 for _, ttl in counters]


def _record_keys(
    org_id: str,
    at: datetime,
    objects: Sequence[tuple[str, str, str, str]],
    runs: Sequence[RunCharge],
    steps: Sequence[StepCharge],
) -> list[str]:
    """lua/record.lua's KEYS up to its token counters, in the order its header lists, but
    for the Record's once marker (KEYS[5])."""
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
    return keys


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
