"""The control plane's Prometheus metrics, served on PRISM_METRICS_LISTEN.

Labels are bounded: models (the price table's and the upstream's names), outcomes and
denial codes; never object ids, keys or orgs.
"""

from prometheus_client import Counter, Histogram

CHECK_SECONDS = Histogram(
    "prism_check_duration_seconds",
    "Time to answer a Check, from request to response.",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
CHECK_DECISIONS = Counter(
    "prism_check_decisions_total",
    "Check answers, by result (allowed, denied) and the denial's code.",
    ["result", "code"],
)
TOKENS = Counter(
    "prism_tokens_total",
    "Tokens of charged runs, by model and kind (input, cached, output).",
    ["model", "kind"],
)
COST_USD = Counter("prism_cost_usd_total", "USD charged, by model or tool fee.", ["model"])
UNPRICED_RUNS = Counter(
    "prism_unpriced_runs_total", "Runs charged 0 because their model has no price.", ["model"]
)
RUNS_CHARGED = Counter(
    "prism_runs_charged_total",
    "Runs charged, by who first saw them ended: a response, or the sweeper.",
    ["source"],
)
SLOT_RENEWALS = Counter(
    "prism_slot_renewals_total",
    "Grants presented to Renew, by result: renewed, not_held (the slot was released or its "
    "lease ran out) or refused (a grant forged or expired).",
    ["result"],
)
