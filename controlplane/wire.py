"""Conversions between prism.v1 messages and the domain records."""

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from controlplane.records import Key, Org, Policy
from prism.v1 import admin_pb2


def policy_from_wire(message: admin_pb2.Policy) -> Policy:
    return Policy(tuple(message.allowed_models), tuple(message.allowed_ip_ranges))


def policy_to_wire(policy: Policy) -> admin_pb2.Policy:
    return admin_pb2.Policy(
        allowed_models=policy.allowed_models, allowed_ip_ranges=policy.allowed_ip_ranges
    )


def time_from_wire(message: admin_pb2.Key, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    return getattr(message, field).ToDatetime(tzinfo=UTC)


def _timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def org_to_wire(org: Org) -> admin_pb2.Org:
    return admin_pb2.Org(
        id=org.id,
        display_name=org.display_name,
        metadata=org.metadata,
        policy=policy_to_wire(org.policy),
        create_time=_timestamp(org.create_time),
        update_time=_timestamp(org.update_time),
    )


def key_to_wire(key: Key) -> admin_pb2.Key:
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
