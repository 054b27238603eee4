"""The control plane's domain records and their JSON form in Redis.

Times are stored as ISO 8601 strings in UTC: exact to the microsecond, unlike float epochs,
and readable with redis-cli.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Policy:
    """Access rules; an empty list allows everything."""

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
class OrgRecord:
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
            "create_time": _iso(self.create_time),
            "update_time": _iso(self.update_time),
            "metadata": self.metadata,
            "policy": self.policy.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "OrgRecord":
        return cls(
            id=data["id"],
            display_name=data["display_name"],
            create_time=_time(data["create_time"]),
            update_time=_time(data["update_time"]),
            metadata=data["metadata"],
            policy=Policy.from_json(data["policy"]),
        )


@dataclass(frozen=True)
class KeyRecord:
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
            "create_time": _iso(self.create_time),
            "update_time": _iso(self.update_time),
            "expire_time": _iso(self.expire_time),
            "revoke_time": _iso(self.revoke_time),
            "metadata": self.metadata,
            "policy": self.policy.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "KeyRecord":
        return cls(
            id=data["id"],
            org_id=data["org_id"],
            name=data["name"],
            display_prefix=data["display_prefix"],
            secret_sha256=data["secret_sha256"],
            create_time=_time(data["create_time"]),
            update_time=_time(data["update_time"]),
            expire_time=_optional_time(data["expire_time"]),
            revoke_time=_optional_time(data["revoke_time"]),
            metadata=data["metadata"],
            policy=Policy.from_json(data["policy"]),
        )


def now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _optional_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
