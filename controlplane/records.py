"""The control plane's domain objects and their JSON form in Redis."""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Policy:
    """Access rules; empty lists allow everything."""

    allowed_models: tuple[str, ...] = ()
    allowed_ip_ranges: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed_models": list(self.allowed_models),
            "allowed_ip_ranges": list(self.allowed_ip_ranges),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Policy":
        return cls(tuple(data["allowed_models"]), tuple(data["allowed_ip_ranges"]))


@dataclass(frozen=True)
class Org:
    id: str
    display_name: str
    create_time: datetime
    update_time: datetime
    metadata: dict[str, str] = field(default_factory=dict)
    policy: Policy = Policy()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "create_time": _epoch(self.create_time),
            "update_time": _epoch(self.update_time),
            "metadata": self.metadata,
            "policy": self.policy.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Org":
        return cls(
            id=data["id"],
            display_name=data["display_name"],
            create_time=_time(data["create_time"]),
            update_time=_time(data["update_time"]),
            metadata=data["metadata"],
            policy=Policy.from_json(data["policy"]),
        )


@dataclass(frozen=True)
class Key:
    id: str
    org_id: str
    name: str
    display_prefix: str
    # SHA-256 (hex) of the secret; the secret itself is never stored.
    secret_sha256: str
    create_time: datetime
    update_time: datetime
    expire_time: datetime | None = None
    revoke_time: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    policy: Policy = Policy()

    @property
    def revoked(self) -> bool:
        return self.revoke_time is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "org_id": self.org_id,
            "name": self.name,
            "display_prefix": self.display_prefix,
            "secret_sha256": self.secret_sha256,
            "create_time": _epoch(self.create_time),
            "update_time": _epoch(self.update_time),
            "expire_time": _epoch(self.expire_time),
            "revoke_time": _epoch(self.revoke_time),
            "metadata": self.metadata,
            "policy": self.policy.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Key":
        return cls(
            id=data["id"],
            org_id=data["org_id"],
            name=data["name"],
            display_prefix=data["display_prefix"],
            secret_sha256=data["secret_sha256"],
            create_time=_time(data["create_time"]),
            update_time=_time(data["update_time"]),
            expire_time=_time(data["expire_time"]),
            revoke_time=_time(data["revoke_time"]),
            metadata=data["metadata"],
            policy=Policy.from_json(data["policy"]),
        )


def now() -> datetime:
    return datetime.now(UTC)


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _time(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)
