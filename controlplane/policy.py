"""The access decision for one request and the denials of every rule (their validation is
policy_validation.py).

Both the key's and its org's policy must allow a request. A denial names the rule that
refused it, and nothing of any other tenant or of the secret.
"""

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from functools import lru_cache

from controlplane import keys
from controlplane.limiter import Budget, Outcome
from controlplane.records import KeyRecord, OrgRecord, Policy
from prism.addresses import parse_address
from prism.money import usd
from prism.openai_errors import CONTROL_PLANE_UNAVAILABLE, INVALID_REQUEST, SERVER_ERROR

PERMISSION_DENIED = "permission_denied"
INVALID_API_KEY = "invalid_api_key"
INSUFFICIENT_QUOTA = "insufficient_quota"
RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
# Distinct allowed_ip_ranges lists kept parsed (_networks): one per org and key policy that
# has them, each a few hundred bytes.
_PARSED_RANGE_LISTS = 10_000
# How the upstream names each kind of object in its 404s, which a request naming another
# org's object gets word for word.
_NOT_FOUND_NAMES = {
    "assistant": "assistant",
    "thread": "thread",
    "message": "message",
    "run": "run",
    "vector_store": "vector store",
    "vector_store_file_batch": "file batch",
}


@dataclass(frozen=True)
class Denial:
    """The OpenAI-style error the data plane sends instead of forwarding."""

    http_status: int
    type: str
    code: str
    message: str
    param: str = ""
    # For rate limits: when the request would pass.
    retry_after_ms: int = 0
    # Retrying cannot help (an exhausted budget).
    do_not_retry: bool = False
    # The access rule that denied (`key.revoked`, `org.allowed_models`, ...); "" for others.
    rule: str = ""


def missing_key() -> Denial:
    return Denial(
        401,
        INVALID_REQUEST,
        "missing_api_key",
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). Prism keys start "
        f"with {keys.SECRET_PREFIX}; ask your Prism operator for one.",
    )


def unknown_key(presented: str) -> Denial:
    return Denial(
        401,
        INVALID_REQUEST,
        INVALID_API_KEY,
        f"Incorrect API key provided: {keys.mask(presented)}. "
        f"Prism keys start with {keys.SECRET_PREFIX}; ask your Prism operator for one.",
    )


def decide(
    key: KeyRecord,
    org: OrgRecord,
    method: str,
    models: Sequence[str],
    client_ip: str,
    at: datetime,
) -> Denial | None:
    """None when the rules of the key and its org let the request pass; otherwise why not.
    Ownership, limits and budgets are decided with Redis, after this."""
    return key_denial(key, at) or rules_denial(key, org, method, models, client_ip)


def key_denial(key: KeyRecord, at: datetime) -> Denial | None:
    """Why the key cannot be used at all (revoked, expired), if it cannot."""
    if key.revoke_time is not None:
        return Denial(
            401,
            INVALID_REQUEST,
            INVALID_API_KEY,
            f"The API key {key.display_prefix}… was revoked at {_when(key.revoke_time)}; "
            "ask your Prism operator for a new key.",
            rule="key.revoked",
        )
    if key.expire_time is not None and key.expire_time <= at:
        return Denial(
            401,
            INVALID_REQUEST,
            INVALID_API_KEY,
            f"The API key {key.display_prefix}… expired at {_when(key.expire_time)}; "
            "ask your Prism operator for a new key.",
            rule="key.expired",
        )
    return None


def rules_denial(
    key: KeyRecord,
    org: OrgRecord,
    method: str | None,
    models: Sequence[str],
    client_ip: str | None,
) -> Denial | None:
    """Which access rule of the key or its org refuses the method, models and client address
    (None: not asked about), if one does."""
    for owner, policy in (("key", key.policy), ("org", org.policy)):
        denial = (
            (method is not None and _read_only_denial(owner, policy, method))
            or _model_denial(owner, policy, models)
            or (client_ip is not None and _address_denial(owner, policy, client_ip))
        )
        if denial:
            return denial
    return None


def model_denial(key: KeyRecord, org: OrgRecord, models: Sequence[str]) -> Denial | None:
    """Whether the key and its org allow these models (a run's assistant's, say)."""
    return _model_denial("key", key.policy, models) or _model_denial("org", org.policy, models)


def restricts_models(key: KeyRecord, org: OrgRecord) -> bool:
    return bool(key.policy.allowed_models or org.policy.allowed_models)


def unknown_object_model(object_id: str) -> Denial:
    """The model of a run's assistant, or of the run tool outputs are submitted to, was never
    seen by the gateway (created elsewhere, or before it remembered runs' models)."""
    if object_id.startswith("run_"):
        return Denial(
            403,
            PERMISSION_DENIED,
            PERMISSION_DENIED,
            f"the model of run '{object_id}' is not known to the gateway, so the allowed "
            "models cannot be checked; start a new run through the gateway",
        )
    return Denial(
        403,
        PERMISSION_DENIED,
        PERMISSION_DENIED,
        f"the model of assistant '{object_id}' is not known to the gateway, so the "
        "allowed models cannot be checked; name the run's model with 'model'",
        param="assistant_id",
    )


def not_owned(kind: str, object_id: str, param: str) -> Denial:
    """What the upstream answers for an object that does not exist: another org's objects do
    not exist for this one. A vector store a body names (its `param` says where) is a 400,
    as the upstream refuses tool resources naming no store; one in the path is a 404."""
    if kind == "file":
        return Denial(404, INVALID_REQUEST, "", f"No such File object: {object_id}", param)
    message = f"No {_NOT_FOUND_NAMES.get(kind, kind)} found with id '{object_id}'."
    if kind == "vector_store" and param:
        return Denial(400, INVALID_REQUEST, "invalid_value", message, param)
    return Denial(404, INVALID_REQUEST, "", message, param)


def rate_limited(refused: Outcome) -> Denial:
    counter = refused.counter
    return Denial(
        429,
        counter.kind.counts,
        RATE_LIMIT_EXCEEDED,
        counter.kind.refusal_message(counter.owner, counter.limit, refused.retry_ms),
        retry_after_ms=refused.retry_ms,
    )


_RESETS = {
    "daily": " It resets at 00:00 UTC.",
    "monthly": " It resets on the 1st at 00:00 UTC.",
    "total": "",
}


def over_budget(budget: Budget, spent_micro_usd: int) -> Denial:
    return Denial(
        429,
        INSUFFICIENT_QUOTA,
        INSUFFICIENT_QUOTA,
        f"You exceeded your current quota: this {budget.owner}'s {budget.period} budget of "
        f"{usd(budget.limit_micro_usd)} is spent ({usd(spent_micro_usd)} "
        f"used).{_RESETS[budget.period]} Ask your Prism operator to raise it.",
        do_not_retry=True,
    )


def reservation_too_large(
    budget: Budget, reservation_micro_usd: int, spent_micro_usd: int, reserved_micro_usd: int
) -> Denial:
    """A run whose expected cost does not fit in what is left of a budget. Retrying helps
    only once runs under way end and give back what they hold."""
    under_way = (
        f" and {usd(reserved_micro_usd)} reserved by runs under way" if reserved_micro_usd else ""
    )
    return Denial(
        429,
        INSUFFICIENT_QUOTA,
        INSUFFICIENT_QUOTA,
        f"You exceeded your current quota: this run's reservation of "
        f"{usd(reservation_micro_usd)} does not fit in this {budget.owner}'s {budget.period} "
        f"budget of {usd(budget.limit_micro_usd)} ({usd(spent_micro_usd)} spent{under_way})."
        f"{_RESETS[budget.period]} Set lower max_prompt_tokens and max_completion_tokens to "
        "reserve less, or ask your Prism operator to raise the budget.",
        do_not_retry=not reserved_micro_usd,
    )


def ownership_unrecordable() -> Denial:
    """Fail-open (PRISM_RATELIMIT_FAIL_OPEN) lets requests through while Redis refuses
    writes, but not one that may create objects: the gateway could not record them as the
    caller's, so they would be unreachable for their creator."""
    return Denial(
        503,
        SERVER_ERROR,
        CONTROL_PLANE_UNAVAILABLE,
        "The gateway cannot record new objects right now (its store refuses writes), so it "
        "did not forward this request, which would create one its creator could not reach. "
        "Requests that create nothing still pass. Please retry shortly.",
        retry_after_ms=1000,
    )


def _read_only_denial(owner: str, policy: Policy, method: str) -> Denial | None:
    if not policy.read_only or method == "GET":
        return None
    return Denial(
        403,
        PERMISSION_DENIED,
        PERMISSION_DENIED,
        f"this {owner} is read-only: only GET requests are allowed, not {method}",
        rule=f"{owner}.read_only",
    )


def _model_denial(owner: str, policy: Policy, models: Sequence[str]) -> Denial | None:
    if not policy.allowed_models:
        return None
    for model in models:
        if not any(fnmatchcase(model, pattern) for pattern in policy.allowed_models):
            return Denial(
                403,
                PERMISSION_DENIED,
                PERMISSION_DENIED,
                f"model '{model}' is not allowed for this {owner}; "
                f"allowed: {', '.join(policy.allowed_models)}",
                param="model",
                rule=f"{owner}.allowed_models",
            )
    return None


def _address_denial(owner: str, policy: Policy, client_ip: str) -> Denial | None:
    if not policy.allowed_ip_ranges:
        return None
    address = parse_address(client_ip)
    if address is not None and any(
        address in network for network in _networks(policy.allowed_ip_ranges)
    ):
        return None
    return Denial(
        403,
        PERMISSION_DENIED,
        PERMISSION_DENIED,
        f"client IP {client_ip or '(unknown)'} is not allowed for this {owner}; "
        f"allowed_ip_ranges: {', '.join(policy.allowed_ip_ranges)}",
        rule=f"{owner}.allowed_ip_ranges",
    )


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=_PARSED_RANGE_LISTS)
def _networks(ranges: tuple[str, ...]) -> tuple[Network, ...]:
    """A policy's allowed_ip_ranges, parsed. The same strings always parse to the same
    networks, so remembering them changes no decision; parsing every range again on each
    request was a third of the CPU of a Check under a full policy."""
    return tuple(ipaddress.ip_network(cidr) for cidr in ranges)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
