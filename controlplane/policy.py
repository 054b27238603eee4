"""The access decision for one request, and the validation of the rules it applies.

Both the key's and its org's policy must allow a request. A denial names the rule that
refused it, and nothing of any other tenant or of the secret.
"""

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase

from controlplane import keys
from controlplane.errors import InvalidArgument
from controlplane.records import KeyRecord, OrgRecord, Policy

INVALID_REQUEST = "invalid_request_error"
PERMISSION_DENIED = "permission_denied"
INVALID_API_KEY = "invalid_api_key"


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
    key: KeyRecord, org: OrgRecord, models: Sequence[str], client_ip: str, at: datetime
) -> Denial | None:
    """None when the request may pass; otherwise why not."""
    if key.revoke_time is not None:
        return Denial(
            401,
            INVALID_REQUEST,
            INVALID_API_KEY,
            f"The API key {key.display_prefix}… was revoked at {_when(key.revoke_time)}; "
            "ask your Prism operator for a new key.",
        )
    if key.expire_time is not None and key.expire_time <= at:
        return Denial(
            401,
            INVALID_REQUEST,
            INVALID_API_KEY,
            f"The API key {key.display_prefix}… expired at {_when(key.expire_time)}; "
            "ask your Prism operator for a new key.",
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
                f"model '{model}' is not allowed for this {owner}; "
                f"allowed: {', '.join(policy.allowed_models)}",
                param="model",
            )
    return None


def _address_denial(owner: str, policy: Policy, client_ip: str) -> Denial | None:
    if not policy.allowed_ip_ranges:
        return None
    address = _address(client_ip)
    if address is not None and any(
        address in ipaddress.ip_network(cidr) for cidr in policy.allowed_ip_ranges
    ):
        return None
    return Denial(
        403,
        PERMISSION_DENIED,
        PERMISSION_DENIED,
        f"client IP {client_ip or '(unknown)'} is not allowed for this {owner}; "
        f"allowed_ip_ranges: {', '.join(policy.allowed_ip_ranges)}",
    )


def _address(client_ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client's address; an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, as dual-stack
    sockets report IPv4 peers) counts as the IPv4 address it carries."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def validated(policy: Policy) -> Policy:
    """The policy with its entries trimmed and CIDRs normalised (`10.1.2.3/8` becomes
    `10.0.0.0/8`); InvalidArgument names the first bad rule."""
    models = tuple(pattern.strip() for pattern in policy.allowed_models)
    for pattern in models:
        if not pattern:
            raise InvalidArgument(
                "policy.allowed_models: entries must be model names or globs like 'gpt-4o*', "
                "not empty; an empty list allows every model"
            )
    ranges = []
    for cidr in policy.allowed_ip_ranges:
        try:
            ranges.append(str(ipaddress.ip_network(cidr.strip(), strict=False)))
        except ValueError:
            raise InvalidArgument(
                f"policy.allowed_ip_ranges: {cidr!r} is not an IPv4 or IPv6 CIDR "
                "(e.g. 10.0.0.0/8 or 2001:db8::/32)"
            ) from None
    return Policy(models, tuple(ranges))
