"""The access decision for one request, and the validation of the rules it applies.

Both the org's and the key's policy must allow a request; the denial names the rule that
refused it, and nothing of any other tenant.
"""

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase

from controlplane import key_material
from controlplane.errors import InvalidArgument
from controlplane.records import Key, Org, Policy

INVALID_REQUEST = "invalid_request_error"
PERMISSION_DENIED = "permission_denied"


@dataclass(frozen=True)
class Denial:
    """The OpenAI-style error the data plane sends instead of forwarding."""

    http_status: int
    type: str
    code: str
    message: str
    param: str = ""


def missing_key() -> Denial:
    return Denial(
        401,
        INVALID_REQUEST,
        "missing_api_key",
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    )


def unknown_key(presented: str) -> Denial:
    return Denial(
        401,
        INVALID_REQUEST,
        "invalid_api_key",
        f"Incorrect API key provided: {key_material.mask(presented)}. "
        "Prism keys start with sk-prism-; ask your Prism operator for one.",
    )


def decide(
    key: Key, org: Org, models: Sequence[str], client_ip: str, at: datetime
) -> Denial | None:
    """None when the request may pass; otherwise why not."""
    if key.revoked:
        return Denial(
            401,
            INVALID_REQUEST,
            "invalid_api_key",
            f"The API key {key.display_prefix}… has been revoked.",
        )
    if key.expire_time is not None and key.expire_time <= at:
        return Denial(
            401,
            INVALID_REQUEST,
            "invalid_api_key",
            f"The API key {key.display_prefix}… expired at {key.expire_time.isoformat()}.",
        )
    for owner, policy in (("key", key.policy), ("org", org.policy)):
        denial = _model_denial(owner, policy, models) or _address_denial(owner, policy, client_ip)
        if denial:
            return denial
    return None


def _model_denial(owner: str, policy: Policy, models: Sequence[str]) -> Denial | None:
    if not policy.allowed_models:
        return None
    for model in models:
        if not any(fnmatchcase(model, pattern) for pattern in policy.allowed_models):
            return Denial(
                403,
                PERMISSION_DENIED,
                PERMISSION_DENIED,
                f"The model '{model}' is not allowed by this {owner}'s policy "
                f"(allowed_models: {', '.join(policy.allowed_models)}).",
                param="model",
            )
    return None


def _address_denial(owner: str, policy: Policy, client_ip: str) -> Denial | None:
    if not policy.allowed_ip_ranges:
        return None
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        address = None
    if address is not None and any(
        address in ipaddress.ip_network(cidr) for cidr in policy.allowed_ip_ranges
    ):
        return None
    return Denial(
        403,
        PERMISSION_DENIED,
        PERMISSION_DENIED,
        f"Requests from {client_ip or 'an unknown address'} are not allowed by this "
        f"{owner}'s policy (allowed_ip_ranges: {', '.join(policy.allowed_ip_ranges)}).",
    )


def validated(policy: Policy) -> Policy:
    """The policy with its CIDRs normalised; InvalidArgument names the first bad rule."""
    for pattern in policy.allowed_models:
        if not pattern.strip():
            raise InvalidArgument("policy.allowed_models: model names and globs must not be empty")
    ranges = []
    for cidr in policy.allowed_ip_ranges:
        try:
            ranges.append(str(ipaddress.ip_network(cidr.strip(), strict=False)))
        except ValueError:
            raise InvalidArgument(
                f"policy.allowed_ip_ranges: {cidr!r} is not an IPv4 or IPv6 CIDR "
                "(e.g. 10.0.0.0/8 or 2001:db8::/32)"
            ) from None
    return Policy(policy.allowed_models, tuple(ranges))
