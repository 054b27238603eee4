"""The rate-limit kinds, one entry each: what the stored policy, the Admin API's translation,
the limiter, the check script's arguments, the x-ratelimit-* headers and the 429 of a refused
request all read.

As in envoyproxy/ratelimit, each way of counting (an Algorithm) is a file of its own:
limit_algorithms/<algorithm>.lua, which lua/check.lua runs each counter of the kind with.
"""

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from prism import redis_keys
from prism.rate_limit_units import REQUESTS, TOKENS

MINUTE_MS = 60_000


class Algorithm(Enum):
    """How Redis counts a kind; the value names its file, limit_algorithms/<value>.lua."""

    # A GCRA state (the theoretical arrival time, ms) that each request adds 1 to.
    RATE = "rate"
    # A GCRA state that Record adds run tokens to; passes while any token is left.
    TOKENS = "tokens"
    # A sorted set of requests in flight by their holders' last renewal, each dropped once
    # its lease (PRISM_SLOT_LEASE_SECONDS) passes unrenewed; Record releases it.
    SLOTS = "slots"


_ALGORITHMS = Path(__file__).with_name("limit_algorithms")
# The Lua that defines every algorithm, which lua/check.lua is run after.
ALGORITHMS_LUA = (_ALGORITHMS / "algorithms.lua").read_text() + "".join(
    (_ALGORITHMS / f"{algorithm.value}.lua").read_text() for algorithm in Algorithm
)


@dataclass(frozen=True)
class LimitKind:
    # The field of prism.v1.RateLimits and of the stored policy's `rate_limits`.
    name: str
    algorithm: Algorithm
    # The window of a GCRA kind; None for SLOTS kinds, whose period is the control plane's
    # slot lease (a setting: limiter.counters is given it).
    period_ms: int | None
    # What it counts, a unit of prism.rate_limit_units: the type of the OpenAI error of a
    # refused request, and the name of a GCRA kind's Redis counter (prism.redis_keys.rate;
    # SLOTS kinds use in-flight sets).
    counts: str
    # The message of that error: a str.format template with {owner} (key or org), {limit}
    # and {wait}.
    refusal: str
    # Its status goes to clients in the x-ratelimit-*-<counts> headers.
    reported: bool = True
    # Refuses only requests that start model work; the others are told what it has left.
    model_requests_only: bool = False

    def redis_key(self, org_id: str, owner: str) -> str:
        """Where one owner's counter lives; owner is `org` or `key:<key id>`."""
        if self.algorithm is Algorithm.SLOTS:
            return redis_keys.in_flight(org_id, owner)
        return redis_keys.rate(org_id, owner, self.counts)

    def refusal_message(self, owner: str, limit: int, retry_ms: int) -> str:
        wait = f"Please try again in {retry_ms / 1000:.3g}s."
        return self.refusal.format(owner=owner, limit=limit, wait=wait)


# In the order policies are stored and shown.
LIMIT_KINDS = (
    LimitKind(
        name="requests_per_minute",
        algorithm=Algorithm.RATE,
        period_ms=MINUTE_MS,
        counts=REQUESTS,
        refusal="Rate limit reached for requests per minute (RPM) on this {owner}: "
        "limit {limit}. {wait}",
    ),
    LimitKind(
        name="tokens_per_minute",
        algorithm=Algorithm.TOKENS,
        period_ms=MINUTE_MS,
        counts=TOKENS,
        refusal="Rate limit reached for tokens per minute (TPM) on this {owner}: "
        "limit {limit}, none left. {wait}",
        model_requests_only=True,
    ),
    LimitKind(
        name="concurrent_requests",
        algorithm=Algorithm.SLOTS,
        period_ms=None,
        counts=REQUESTS,
        refusal="Too many concurrent requests on this {owner}: the limit is {limit} in flight. "
        "Please try again once one of them has finished.",
        reported=False,
    ),
)
