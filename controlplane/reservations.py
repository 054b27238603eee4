"""Budget reservations: what a request that starts model work holds against every budget
it is subject to until its run is charged, so that concurrent runs cannot together spend
past a budget that each alone fits in.

A run's expected cost is its model's price times a bound on its tokens: the body's
`max_prompt_tokens` and `max_completion_tokens` when given (the upstream holds the whole
run to them), else the defaults below. Every prompt token is priced as uncached input, so
the bound holds whatever the cache does. An unpriced model reserves nothing, as it is
charged nothing.

lua/check.lua holds the reservation atomically with the budget check, under the request's
id; tool outputs resume a run, whose reservation covers it already, or else is held under the
run's id (a run not created through the gateway, or already charged, reserves nothing, as it
charges nothing more). lua/record.lua moves it onto the run
the response shows created, settles it when the run is charged and releases it when the
request ends having created no run; the sweeper releases that of a run it finds ended
without usage. Each expires on its own after RESERVATION_TTL_MS (lua/reservations.lua).
"""

from dataclasses import dataclass
from pathlib import Path

from controlplane import pricing
from controlplane.pricing import Price

# The functions lua/check.lua and lua/record.lua keep reservations with, run before them.
RESERVATIONS_LUA = (Path(__file__).with_name("lua") / "reservations.lua").read_text()
# A run without max_prompt_tokens: file_search's default of 20 results of up to 800 tokens
# (16,000) plus about 4,000 of instructions and thread history, what an ordinary run of the
# Assistants API reads. A run reading more (a long thread, a tool loop) overshoots its
# reservation by the difference.
DEFAULT_PROMPT_TOKENS = 20_000
# A run without max_completion_tokens: 4,096, the largest answer of many models (gpt-4-turbo's
# output limit) and far above a typical one.
DEFAULT_COMPLETION_TOKENS = 4_096
# Runs expire upstream after at most 10 minutes (in requires_action; queued and in_progress
# runs end sooner), and the sweeper charges a run within about 1.5 minutes of its end by
# default (PRISM_SWEEP_AFTER_SECONDS 60, PRISM_SWEEP_INTERVAL_SECONDS 30). 15 minutes
# outlasts both, so a reservation lapses only when its run can no longer cost anything,
# and none outlives a lost Record by more.
RESERVATION_TTL_MS = 15 * 60 * 1000


@dataclass(frozen=True)
class Reservation:
    # The request's id, or the id of the run it resumes.
    id: str
    micro_usd: int
    # Held under the request's id: the request's final Record releases it unless the
    # response created a run.
    by_request: bool

    def script_spec(self, key_id: str) -> dict[str, object]:
        """Its entry in check.lua's arguments."""
        return {
            "id": self.id,
            "amount": self.micro_usd,
            "key": key_id,
            "ttl": RESERVATION_TTL_MS,
            "resumes": not self.by_request,
        }


def expected_cost(price: Price | None, max_prompt_tokens: int, max_completion_tokens: int) -> int:
    """What a run may cost at most, in micro-USD: 0 for an unpriced model."""
    return pricing.run_cost(
        price,
        max_prompt_tokens or DEFAULT_PROMPT_TOKENS,
        0,
        max_completion_tokens or DEFAULT_COMPLETION_TOKENS,
    )
