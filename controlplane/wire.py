"""Conversions between prism.v1 messages and the domain records."""

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from controlplane.errors import InvalidArgument
from controlplane.records import KeyRecord, OrgRecord, Policy
from prism.v1 import admin_pb2


def policy_from_wire(message: admin_pb2.Policy) -> Policy:
    return Policy(tuple(message.allowed_models), tuple(message.allowed_ip_ranges))


def policy_to_wire(policy: Policy) -> admin_pb2.Policy:
    return admin_pb2.Policy(
        allowed_models=policy.allowed_models, allowed_ip_ranges=policy.allowed_ip_ranges
    )


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
