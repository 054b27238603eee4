"""Rate limits, concurrency limits and budgets: which counters a request meets, and what
their answers mean for it.

A key's limits and its org's both apply. Requests and tokens per minute are rolling windows
kept by GCRA (one number per limit: the theoretical arrival time), so a limit of N allows a
burst of N and then one more every 60/N seconds, exactly, however many data-plane workers
ask at once. The counting runs in Redis (lua/check.lua and lua/record.lua, via the Store);
this module only decides what to count and reads the results.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from controlplane.pricing import MICRO_USD
from controlplane.records import KeyRecord, OrgRecord, RateLimit
from prism import redis_keys

MINUTE_MS = 60_000
# A request's concurrency slot is dropped after this long if its release never comes (its
# data-plane worker died): longer than any upstream wait the data plane allows by default.
SLOT_LEASE_MS = 15 * MINUTE_MS

Owner = Literal["key", "org"]
Kind = Literal["rate", "tokens", "slots"]
# Spend counters of a UTC day and month outlive them by this much, for reports.
_DAY_SECONDS = 86_400
_SPEND_TTL_SECONDS = {"day": 2 * _DAY_SECONDS, "month": 62 * _DAY_SECONDS}


@dataclass(frozen=True)
class Counter:
    owner: Owner
    # The policy's name for the limit: requests_per_minute, tokens_per_minute,
    # concurrent_requests.
    name: str
    kind: Kind
    limit: int
    # The policy's shadow mode: counted and reported, never enforced.
    shadow: bool
    # Whether it may refuse this request: not in shadow mode, and for a tokens limit, only
    # on a request that starts model work.
    enforced: bool
    redis_key: str
    period_ms: int

    def script_spec(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "limit": self.limit,
            "period": self.period_ms,
            "shadow": not self.enforced,
        }

    @property
    def label(self) -> str:
        """How headers and logs name the limit: `key requests_per_minute`."""
        return f"{self.owner} {self.name}"


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


def _owners(key: KeyRecord, org: OrgRecord) -> tuple[tuple[Owner, str, KeyRecord | OrgRecord], ...]:
    return (("key", f"key:{key.id}", key), ("org", "org", org))


def counters(key: KeyRecord, org: OrgRecord, uses_model: bool) -> list[Counter]:
    """The limits a request meets. Every request counts towards the requests and concurrency
    limits and is told what its tokens limits have left, but only requests that start model
    work are refused for tokens."""
    found = []
    for owner, owner_name, record in _owners(key, org):
        limits = record.policy.rate_limits
        wanted: list[tuple[str, Kind, RateLimit, str, int]] = [
            ("requests_per_minute", "rate", limits.requests_per_minute, "requests", MINUTE_MS),
            ("tokens_per_minute", "tokens", limits.tokens_per_minute, "tokens", MINUTE_MS),
            ("concurrent_requests", "slots", limits.concurrent_requests, "", SLOT_LEASE_MS),
        ]
        for name, kind, limit, counter_name, period in wanted:
            if limit.limit <= 0:
                continue
            redis_key = (
                redis_keys.in_flight(org.id, owner_name)
                if kind == "slots"
                else redis_keys.rate(org.id, owner_name, counter_name)
            )
            enforced = not limit.shadow and (kind != "tokens" or uses_model)
            found.append(
                Counter(owner, name, kind, limit.limit, limit.shadow, enforced, redis_key, period)
            )
    return found


def token_counters(key: KeyRecord, org: OrgRecord) -> list[Counter]:
    """The tokens-per-minute limits the tokens of a key's runs count towards."""
    return [counter for counter in counters(key, org, uses_model=True) if counter.kind == "tokens"]


def slot_sets(org_id: str, key_id: str) -> list[str]:
    """The in-flight sets a request may hold a slot in, to release it."""
    return [redis_keys.in_flight(org_id, f"key:{key_id}"), redis_keys.in_flight(org_id, "org")]


def outcomes(counters_: list[Counter], answers: list[dict[str, object]]) -> list[Outcome]:
    return [
        Outcome(
            counter,
            bool(answer["allowed"]),
            int(answer["remaining"]),  # type: ignore[call-overload]
            max(round(answer["reset"]), 0),  # type: ignore[call-overload]
            max(round(answer["retry"]), 1),  # type: ignore[call-overload]
        )
        for counter, answer in zip(counters_, answers, strict=True)
    ]


def refusal(found: list[Outcome]) -> Outcome | None:
    """The enforced limit that refused the request; of several, the one that frees up last,
    so that a client retrying after it passes them all."""
    refused = [o for o in found if not o.allowed and o.counter.enforced]
    return max(refused, key=lambda o: o.retry_ms, default=None)


def tightest(found: list[Outcome], name: str) -> Outcome | None:
    """Of the key's and org's limits called `name`, the one with the least left: what the
    x-ratelimit-* headers report."""
    named = [o for o in found if o.counter.name == name]
    return min(named, key=lambda o: (o.remaining, o.counter.limit), default=None)


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
                found.append(Budget(owner, period, limit, redis_key))
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


def usd(micro_usd: int) -> str:
    return f"${micro_usd / MICRO_USD:,.2f}"
