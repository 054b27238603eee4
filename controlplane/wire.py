"""Conversions between prism.v1 messages and the domain records."""

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from controlplane import limiter
from controlplane.errors import InvalidArgument
from controlplane.policy import budgets_from_usd
from controlplane.records import Budgets, KeyRecord, OrgRecord, Policy, RateLimit, RateLimits
from prism.v1 import admin_pb2


def policy_from_wire(message: admin_pb2.Policy) -> Policy:
    """The policy as sent; InvalidArgument when a budget is not an amount."""
    limits = message.rate_limits
    return Policy(
        allowed_models=tuple(message.allowed_models),
        allowed_ip_ranges=tuple(message.allowed_ip_ranges),
        read_only=message.read_only,
        rate_limits=RateLimits(
            _rate_limit_from_wire(limits.requests_per_minute),
            _rate_limit_from_wire(limits.tokens_per_minute),
            _rate_limit_from_wire(limits.concurrent_requests),
        ),
        budgets=budgets_from_usd(
            message.budgets.daily_usd, message.budgets.monthly_usd, message.budgets.total_usd
        ),
    )


def _rate_limit_from_wire(message: admin_pb2.RateLimit) -> RateLimit:
    return RateLimit(message.limit, message.shadow)


def _rate_limit_to_wire(limit: RateLimit) -> admin_pb2.RateLimit | None:
    return admin_pb2.RateLimit(limit=limit.limit, shadow=limit.shadow) if limit.limit else None


def policy_to_wire(policy: Policy) -> admin_pb2.Policy:
    """The policy as Admin shows it; limits and budgets that are not set are left out."""
    limits, budgets = policy.rate_limits, policy.budgets
    message = admin_pb2.Policy(
        allowed_models=policy.allowed_models,
        allowed_ip_ranges=policy.allowed_ip_ranges,
        read_only=policy.read_only,
    )
    if limits != RateLimits():
        message.rate_limits.CopyFrom(
            admin_pb2.RateLimits(
                requests_per_minute=_rate_limit_to_wire(limits.requests_per_minute),
                tokens_per_minute=_rate_limit_to_wire(limits.tokens_per_minute),
                concurrent_requests=_rate_limit_to_wire(limits.concurrent_requests),
            )
        )
    if budgets != Budgets():
        message.budgets.CopyFrom(
            admin_pb2.Budgets(
                daily_usd=budgets.daily / limiter.MICRO_USD,
                monthly_usd=budgets.monthly / limiter.MICRO_USD,
                total_usd=budgets.total / limiter.MICRO_USD,
            )
        )
    return message


def expire_time_from_wire(key: admin_pb2.Key) -> datetime | None:
    """The key's expire_time; None when unset (the key never expires)."""
    if not key.HasField("expire_time"):
        return None
    try:
        return key.expire_time.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument(
            'key.expire_time is not a valid timestamp (in JSON: "2030-01-01T00:00:00Z")'
        ) from None


def _timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def org_to_wire(org: OrgRecord) -> admin_pb2.Org:
    return admin_pb2.Org(
        id=org.id,
        display_name=org.display_name,
        metadata=org.metadata,
        policy=policy_to_wire(org.policy),
        create_time=_timestamp(org.create_time),
        update_time=_timestamp(org.update_time),
        has_upstream_credential=org.upstream_credential is not None,
    )


def key_to_wire(key: KeyRecord) -> admin_pb2.Key:
    """The key as Admin shows it: everything but the secret's hash."""
    return admin_pb2.Key(
        id=key.id,
        org_id=key.org_id,
        name=key.name,
        display_prefix=key.display_prefix,
        create_time=_timestamp(key.create_time),
        update_time=_timestamp(key.update_time),
        expire_time=_timestamp(key.expire_time),
        revoked=key.revoked,
        revoke_time=_timestamp(key.revoke_time),
        metadata=key.metadata,
        policy=policy_to_wire(key.policy),
    )
