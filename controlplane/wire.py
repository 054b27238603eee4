"""Conversions between prism.v1 messages and the domain records; those of the usage and
request-log reports are in wire_reports.py."""

from datetime import UTC, datetime

from controlplane import pricing
from controlplane.errors import InvalidArgument
from controlplane.key_validation import Validation
from controlplane.limit_kinds import LIMIT_KINDS
from controlplane.policy import Denial
from controlplane.policy_validation import budgets_from_usd
from controlplane.pricing import Price, ToolFees
from controlplane.records import (
    Budgets,
    KeyRecord,
    OrgRecord,
    Policy,
    RateLimit,
    RateLimits,
    RequestLogging,
)
from controlplane.request_logs import validated_request_logging
from controlplane.service_tokens import ServiceTokenRecord
from prism.v1 import admin_pb2, authorizer_pb2, keys_pb2, request_logging_pb2
from prism.wire_copy import to_message


def policy_from_wire(message: admin_pb2.Policy) -> Policy:
    """The policy as sent; InvalidArgument when a budget is not an amount."""
    limits = message.rate_limits
    return Policy(
        allowed_models=tuple(message.allowed_models),
        allowed_ip_ranges=tuple(message.allowed_ip_ranges),
        read_only=message.read_only,
        rate_limits=RateLimits(
            **{kind.name: _rate_limit_from_wire(getattr(limits, kind.name)) for kind in LIMIT_KINDS}
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
                **{kind.name: _rate_limit_to_wire(limits[kind]) for kind in LIMIT_KINDS}
            )
        )
    if budgets != Budgets():
        message.budgets.CopyFrom(
            admin_pb2.Budgets(
                daily_usd=budgets.daily / pricing.MICRO_USD,
                monthly_usd=budgets.monthly / pricing.MICRO_USD,
                total_usd=budgets.total / pricing.MICRO_USD,
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


def org_to_wire(org: OrgRecord) -> admin_pb2.Org:
    return to_message(
        admin_pb2.Org,
        org,
        policy=policy_to_wire(org.policy),
        has_upstream_credential=org.upstream_credential is not None,
        request_logging=request_logging_to_wire(org.request_logging),
    )


def key_to_wire(key: KeyRecord) -> admin_pb2.Key:
    """The key as Admin shows it: everything but the secret's hash."""
    return to_message(admin_pb2.Key, key, policy=policy_to_wire(key.policy))


def service_token_to_wire(token: ServiceTokenRecord) -> admin_pb2.ServiceToken:
    """The token as Admin shows it: everything but the secret's hash."""
    return to_message(admin_pb2.ServiceToken, token, revoked=token.revoke_time is not None)


def denial_to_wire(denial: Denial) -> authorizer_pb2.Denial:
    return to_message(authorizer_pb2.Denial, denial)


def validation_to_wire(validation: Validation) -> keys_pb2.ValidateKeyResponse:
    response = keys_pb2.ValidateKeyResponse(valid=validation.valid, allowed=validation.allowed)
    if validation.key is not None:
        response.principal.CopyFrom(to_message(keys_pb2.KeyPrincipal, validation.key))
    if validation.denial is not None:
        response.denial.CopyFrom(denial_to_wire(validation.denial))
    return response


def model_price_to_wire(model: str, price: Price, custom: bool) -> admin_pb2.ModelPrice:
    return admin_pb2.ModelPrice(
        model=model,
        input_usd_per_million=float(price.input),
        cached_input_usd_per_million=float(price.cached_input),
        output_usd_per_million=float(price.output),
        custom=custom,
    )


def tool_fees_to_wire(fees: ToolFees) -> admin_pb2.ToolFees:
    return admin_pb2.ToolFees(
        file_search_usd_per_thousand_calls=float(fees.file_search_per_thousand_calls),
        vector_store_usd_per_gb_day=float(fees.vector_store_per_gb_day),
        code_interpreter_usd_per_session=float(fees.code_interpreter_per_session),
    )


_BODY_LOGGING = {
    "none": request_logging_pb2.BODY_LOGGING_NONE,
    "metadata": request_logging_pb2.BODY_LOGGING_METADATA,
    "full": request_logging_pb2.BODY_LOGGING_FULL,
}
_BODY_LOGGING_NAMES = {number: name for name, number in _BODY_LOGGING.items()}


def request_logging_to_wire(logging: RequestLogging) -> request_logging_pb2.RequestLogging:
    return request_logging_pb2.RequestLogging(
        bodies=_BODY_LOGGING[logging.bodies], max_body_bytes=logging.max_body_bytes
    )


def request_logging_from_wire(message: request_logging_pb2.RequestLogging) -> RequestLogging:
    """As sent; InvalidArgument for an unknown body policy or a cap out of range."""
    bodies = _BODY_LOGGING_NAMES.get(message.bodies)
    if bodies is None:
        raise InvalidArgument(f"request_logging.bodies {message.bodies} is not a BodyLogging")
    return validated_request_logging(bodies, message.max_body_bytes)
