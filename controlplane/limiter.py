"""Rate limits, concurrency limits and budgets: which counters a request meets, and what
their answers mean for it.

A key's limits and its org's both apply. Requests and tokens per minute are rolling windows
kept by GCRA (one number per limit: the theoretical arrival time), so a limit of N allows a
burst of N and then one more every 60/N seconds, exactly, however many data-plane workers
ask at once. The kinds of limit are the entries of limit_kinds.LIMIT_KINDS. The counting
runs in Redis (lua/check.lua via decisions.py, lua/record.lua via charges.py); this module
only decides what to count and reads the results.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from controlplane.check_script import CounterAnswer
from controlplane.limit_kinds import LIMIT_KINDS, Algorithm, LimitKind
from controlplane.records import KeyRecord, OrgRecord
from prism import redis_keys

Owner = Literal["key", "org"]
# Spend counters of a UTC day and month outlive them by this much, for reports.
_DAY_SECONDS = 86_400
_SPEND_TTL_SECONDS = {"day": 2 * _DAY_SECONDS, "month": 62 * _DAY_SECONDS}


@dataclass(frozen=True)
class Counter:
    owner: Owner
    kind: LimitKind
    limit: int
    # The policy's shadow mode: counted and reported, never enforced.
    shadow: bool
    # Whether it may refuse this request: not in shadow mode, and for a kind limiting only
    # model requests, only on a request that starts model work.
    enforced: bool
    redis_key: str
    # A GCRA kind's window, a SLOTS kind's lease.
    period_ms: int

    def script_spec(self) -> dict[str, object]:
        """Its entry in check.lua's `counters`."""
        return {
            "algorithm": self.kind.algorithm.value,
            "limit": self.limit,
            "period": self.period_ms,
            "shadow": not self.enforced,
        }

    @property
    def label(self) -> str:
        """How headers and logs name the limit: `key requests_per_minute`."""
        return f"{self.owner} {self.kind.name}"


@dataclass(frozen=True)
class Outcome:
    """One counter's answer for one request (times in ms)."""

    counter: Counter
    allowed: bool
    remaining: int
    reset_ms: int
    retry_ms: int


@dataclass(frozen=True)
class Budget:
    owner: Owner
    # daily, monthly or total.
    period: str
    limit_micro_usd: int
    redis_key: str
    # Whose reservations count against it: `org` or `key:<key id>`.
    owner_name: str


def _owners(key: KeyRecord, org: OrgRecord) -> tuple[tuple[Owner, str, KeyRecord | OrgRecord], ...]:
    return (("key", f"key:{key.id}", key), ("org", "org", org))


def counters(key: KeyRecord, org: OrgRecord, uses_model: bool, slot_lease_ms: int) -> list[Counter]:
    """The limits a request meets, a concurrency slot held for `slot_lease_ms` unless
    renewed. Every request counts towards every limit, or is told what it has left, but a
    kind limiting model requests refuses only requests that start model work."""
    found = []
    for owner, owner_name, record in _owners(key, org):
        # The policy's limits are in LIMIT_KINDS' order.
        for kind, limit in zip(LIMIT_KINDS, record.policy.rate_limits.limits, strict=True):
            if limit.limit <= 0:
                continue
            enforced = not limit.shadow and (uses_model or not kind.model_requests_only)
            redis_key = kind.redis_key(org.id, owner_name)
            period_ms = slot_lease_ms if kind.period_ms is None else kind.period_ms
            found.append(
                Counter(owner, kind, limit.limit, limit.shadow, enforced, redis_key, period_ms)
            )
    return found


def token_counters(key: KeyRecord, org: OrgRecord) -> list[Counter]:
    """The limits the tokens of a key's runs count towards (lua/record.lua adds them)."""
    return [
        counter
        # No slot is taken here, so no lease applies.
        for counter in counters(key, org, uses_model=True, slot_lease_ms=0)
        if counter.kind.algorithm is Algorithm.TOKENS
    ]


def slot_sets(org_id: str, key_id: str) -> list[str]:
    """The in-flight sets a request may hold a slot in, to release it."""
    return [
        kind.redis_key(org_id, owner)
        for kind in LIMIT_KINDS
        if kind.algorithm is Algorithm.SLOTS
        for owner in (f"key:{key_id}", "org")
    ]


def outcomes(counters_: list[Counter], answers: Sequence[CounterAnswer]) -> list[Outcome]:
    return [
        Outcome(counter, answer.allowed, answer.remaining, answer.reset_ms, answer.retry_ms)
        for counter, answer in zip(counters_, answers, strict=True)
    ]


def refusal(found: list[Outcome]) -> Outcome | None:
    """The enforced limit that refused the request; of several, the one that frees up last,
    so that a client retrying after it passes them all."""
    refused = [o for o in found if not o.allowed and o.counter.enforced]
    return max(refused, key=lambda o: o.retry_ms, default=None)


def reported(found: list[Outcome]) -> dict[str, Outcome]:
    """Per unit of prism.rate_limit_units that a limit applies in, the key's or org's limit
    with the least left: what the x-ratelimit-* headers report."""
    tightest: dict[str, Outcome] = {}
    for outcome in found:
        if not outcome.counter.kind.reported:
            continue
        unit = outcome.counter.kind.counts
        held = tightest.get(unit)
        if held is None or _tightness(outcome) < _tightness(held):
            tightest[unit] = outcome
    return tightest


def _tightness(outcome: Outcome) -> tuple[int, int]:
    return outcome.remaining, outcome.counter.limit


def holds_slot(found: list[Outcome]) -> bool:
    """Whether the request took a concurrency slot, which Record must release."""
    return any(outcome.counter.kind.algorithm is Algorithm.SLOTS for outcome in found)


def shadow_exceeded(found: list[Outcome]) -> list[str]:
    return [o.counter.label for o in found if o.counter.shadow and not o.allowed]


def budgets(key: KeyRecord, org: OrgRecord, at: datetime) -> list[Budget]:
    found = []
    for owner, owner_name, record in _owners(key, org):
        limits = record.policy.budgets
        for period, limit in (
            ("daily", limits.daily),
            ("monthly", limits.monthly),
            ("total", limits.total),
        ):
            if limit > 0:
                redis_key = redis_keys.spend(org.id, owner_name, _spend_period(period, at))
                found.append(Budget(owner, period, limit, redis_key, owner_name))
    return found


def spend_counters(org_id: str, key_id: str | None, at: datetime) -> list[tuple[str, int | None]]:
    """Every spend counter a charge at `at` adds to, with its time to live in seconds
    (None: kept); the org's only when no key made the charge (key_id None)."""
    found = []
    for owner_name in ([f"key:{key_id}"] if key_id is not None else []) + ["org"]:
        for period in ("daily", "monthly", "total"):
            name = _spend_period(period, at)
            ttl = _SPEND_TTL_SECONDS.get(name.split(":")[0])
            found.append((redis_keys.spend(org_id, owner_name, name), ttl))
    return found


def _spend_period(period: str, at: datetime) -> str:
    if period == "daily":
        return f"day:{at:%Y-%m-%d}"
    if period == "monthly":
        return f"month:{at:%Y-%m}"
    return "total"
