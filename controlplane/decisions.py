"""A request's decision in Redis: lua/verify.lua (its records unchanged, its objects owned,
its model the one checked) and, when it counts, lua/check.lua after it (budgets and their
reservations, rate and concurrency limits, the request's usage), in one script call; which
objects an org owns; and the price a run's reservation is made at.
"""

import json
from collections.abc import Sequence
from pathlib import Path

from redis.exceptions import ResponseError

from controlplane import pricing, usage
from controlplane.check_script import CheckAnswer, CheckArgs
from controlplane.errors import CountersUnavailable
from controlplane.limit_kinds import ALGORITHMS_LUA
from controlplane.limiter import Budget, Counter
from controlplane.prices import stored_price
from controlplane.pricing import Price
from controlplane.records import now
from controlplane.redis_access import RedisPart, unavailable_on_connection_error
from controlplane.reservations import RESERVATIONS_LUA, Reservation
from prism import redis_keys
from prism.redis_client import AsyncRedis

_LUA = Path(__file__).with_name("lua")
_VERIFY = (_LUA / "verify.lua").read_text()
# Read-only, so Redis runs it even when it refuses writes (out of memory, a replica).
_VERIFY_ALONE = "#!lua flags=no-writes\n" + _VERIFY + "return cjson.encode({outcome = 'ok'})\n"
_CHECK = _VERIFY + ALGORITHMS_LUA + RESERVATIONS_LUA + (_LUA / "check.lua").read_text()


class Decisions(RedisPart):
    def __init__(self, client: AsyncRedis) -> None:
        super().__init__(client)
        self._verify = client.register_script(_VERIFY_ALONE)
        self._check = client.register_script(_CHECK)

    @unavailable_on_connection_error
    async def decide(
        self,
        org_id: str,
        key_id: str,
        args: CheckArgs,
        budgets: Sequence[Budget] = (),
        counters: Sequence[Counter] = (),
        reservation: Reservation | None = None,
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
            "budgets": [
                {"limit": budget.limit_micro_usd, "owner": budget.owner_name} for budget in budgets
            ],
            "counters": [counter.script_spec() for counter in counters],
        }
        if reservation is not None:
            spec["reservation"] = reservation.script_spec(key_id)
        keys += redis_keys.reservation_keys(org_id)
        keys += [budget.redis_key for budget in budgets]
        keys += [counter.redis_key for counter in counters]
        spec["usage"] = {
            **spec["usage"],
            "ttl": usage.RETENTION_SECONDS,
            "separator": usage.FIELD_SEPARATOR,
        }
        keys.append(redis_keys.usage(org_id, usage.day_of(now())))
        if reservation is not None and not reservation.by_request:
            keys.append(redis_keys.run(org_id, reservation.id))
        try:
            answer = await self._check(keys=keys, args=[json.dumps(spec)])
        except ResponseError as error:
            # Out of memory, a read-only replica: the records may still be readable.
            raise CountersUnavailable(f"Redis refused the rate-limit counters: {error}") from None
        return CheckAnswer.from_script(answer)

    @unavailable_on_connection_error
    async def model_price(self, org_id: str, model: str, model_object_id: str) -> Price | None:
        """The price of `model`, else of the model remembered for `model_object_id` (an
        assistant or run), read in one round trip; None when unpriced or unknown."""
        async with self._redis.pipeline(transaction=False) as pipe:
            if not model:
                pipe.hget(redis_keys.object_models(org_id), model_object_id)
            pipe.hgetall(redis_keys.MODEL_PRICES)
            answers = await pipe.execute()
        model = model or answers[0] or ""
        overrides = {name: stored_price(raw) for name, raw in answers[-1].items()}
        return pricing.price_of(model, overrides) if model else None

    @unavailable_on_connection_error
    async def filter_owned(self, org_id: str, ids: Sequence[str]) -> list[str]:
        if not ids:
            return []
        kinds = await self._redis.hmget(redis_keys.objects(org_id), list(ids))
        return [object_id for object_id, kind in zip(ids, kinds, strict=True) if kind]
