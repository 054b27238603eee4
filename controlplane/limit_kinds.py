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
# A request's concurrency slot is dropped after this long if its release never comes (its
# data-plane worker died): longer than any upstream wait the data plane allows by default.
SLOT_LEASE_MS = 15 * MINUTE_MS


class Algorithm(Enum):
    """How Redis counts a kind; the value names its file, limit_algorithms/<value>.lua."""

    # A GCRA state (the theoretical arrival time, ms) that each request adds 1 to.
    RATE = "rate"
    # A GCRA state that Record adds run tokens to; passes while any token is left.
    TOKENS = "tokens"
    # A sorted set of requests in flight, each dropped after the period if its release
    # never came; Record releases it.
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
    # The window of a GCRA kind; a slot's lease.
    period_ms: int
    # The Redis counter of a GCRA kind (prism.redis_keys.rate); SLOTS kinds use in-flight sets.
    counter: str
    # The unit its status is reported in (prism.rate_limit_units); None: not reported.
    unit: str | None
    # Refuses only requests that start model work; the others are told what it has left.
    model_requests_only: bool
    # The OpenAI error of a refused request: its type, and its message as a str.format
    # template with {owner} (key or org), {limit} and {wait}.
    error_type: str
    refusal: str

    def redis_key(self, org_id: str, owner: str) -> str:
        """Where one owner's counter lives; owner is `org` or `key:<key id>`."""
        if self.algorithm is Algorithm.SLOTS:
            return redis_keys.in_flight(org_id, owner)
        return redis_keys.rate(org_id, owner, self.counter)

    def refusal_message(self, owner: str, limit: int, retry_ms: int) -> str:
        wait = f"Please try again in {retry_ms / 1000:.3g}s."
        return self.refusal.format(owner=owner, limit=limit, wait=wait)


# In the order policies are stored and shown.
LIMIT_KINDS = (
    LimitKind(
        name="requests_per_minute",
        algorithm=Algorithm.RATE,
        period_ms=MINUTE_MS,
        counter="requests",
        unit=REQUESTS,
        model_requests_only=False,
        error_type="requests",
        refusal="Rate limit reached for requests per minute (RPM) on this {owner}: "
        "limit {limit}. {wait}",
    ),
    LimitKind(
        name="tokens_per_minute",
        algorithm=Algorithm.TOKENS,
        period_ms=MINUTE_MS,
        counter="tokens",
        unit=TOKENS,
        model_requests_only=True,
        error_type="tokens",
        refusal="Rate limit reached for tokens per minute (TPM) on this {owner}: "
        "limit {limit}, none left. {wait}",
    ),
    LimitKind(
        name="concurrent_requests",
        algorithm=Algorithm.SLOTS,
        period_ms=SLOT_LEASE_MS,
        counter="",
        unit=None,
        model_requests_only=False,
        error_type="requests",
        refusal="Too many concurrent requests on this {owner}: the limit is {limit} in flight. "
        "Please try again once one of them has finished.",
    ),
)
