"""The validation of a policy as an operator sets it: each rule checked, trimmed and
normalised, or refused with an InvalidArgument naming the first bad one."""

import ipaddress
from collections.abc import Sequence

from controlplane import pricing
from controlplane.errors import InvalidArgument
from controlplane.limit_kinds import LIMIT_KINDS
from controlplane.records import Budgets, Policy, RateLimits


def validated(policy: Policy) -> Policy:
    """The policy with its entries trimmed and CIDRs normalised (`10.1.2.3/8` becomes
    `10.0.0.0/8`); InvalidArgument names the first bad rule."""
    return Policy(
        validated_models(policy.allowed_models),
        validated_ip_ranges(policy.allowed_ip_ranges),
        policy.read_only,
        validated_rate_limits(policy.rate_limits),
        policy.budgets,
    )


def validated_models(allowed_models: Sequence[str]) -> tuple[str, ...]:
    models = tuple(pattern.strip() for pattern in allowed_models)
    for pattern in models:
        if not pattern:
            raise InvalidArgument(
                "policy.allowed_models: entries must be model names or globs like 'gpt-4o*', "
                "not empty; an empty list allows every model"
            )
    return models


def validated_ip_ranges(allowed_ip_ranges: Sequence[str]) -> tuple[str, ...]:
    ranges = []
    for cidr in allowed_ip_ranges:
        try:
            ranges.append(str(ipaddress.ip_network(cidr.strip(), strict=False)))
        except ValueError:
            raise InvalidArgument(
                f"policy.allowed_ip_ranges: {cidr!r} is not an IPv4 or IPv6 CIDR "
                "(e.g. 10.0.0.0/8 or 2001:db8::/32)"
            ) from None
    return tuple(ranges)


def validated_rate_limits(rate_limits: RateLimits) -> RateLimits:
    for kind in LIMIT_KINDS:
        limit = rate_limits[kind]
        if limit.limit < 0:
            raise InvalidArgument(
                f"policy.rate_limits.{kind.name}.limit is {limit.limit}; use a positive number, "
                "or 0 for no limit"
            )
    return rate_limits


def budgets_from_usd(daily: float, monthly: float, total: float) -> Budgets:
    """Budgets in USD as given on the wire, in micro-USD; InvalidArgument names a bad one."""
    micro = {}
    for name, amount in (("daily_usd", daily), ("monthly_usd", monthly), ("total_usd", total)):
        if not 0 <= amount < 1e12:  # also refuses NaN
            raise InvalidArgument(
                f"policy.budgets.{name} is {amount}; use an amount in USD, or 0 for no budget"
            )
        micro[name] = round(amount * pricing.MICRO_USD)
    return Budgets(micro["daily_usd"], micro["monthly_usd"], micro["total_usd"])
