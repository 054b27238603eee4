"""The control plane's domain records and their JSON form in Redis.

Times are stored as ISO 8601 strings in UTC: exact to the microsecond, unlike float epochs,
and readable with redis-cli.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controlplane.limit_kinds import LIMIT_KINDS, LimitKind


@dataclass(frozen=True)
class RateLimit:
    """Requests or tokens per minute, or requests in flight; 0 means no limit. A shadow limit
    is counted and reported but never enforced."""

    limit: int = 0
    shadow: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"limit": self.limit, "shadow": self.shadow}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RateLimit":
        return cls(data["limit"], data["shadow"])


@dataclass(frozen=True, init=False)
class RateLimits:
    """The policy's limit of each kind in limit_kinds.LIMIT_KINDS, given by the kind's name
    (`RateLimits(requests_per_minute=RateLimit(600))`); a kind not given has none."""

    # One per kind, in LIMIT_KINDS' order.
    limits: tuple[RateLimit, ...]

    def __init__(self, **by_name: RateLimit) -> None:
        limits = tuple(by_name.pop(kind.name, RateLimit()) for kind in LIMIT_KINDS)
        if by_name:
            raise TypeError(f"not rate-limit kinds: {', '.join(by_name)}")
        object.__setattr__(self, "limits", limits)

    def __getitem__(self, kind: LimitKind) -> RateLimit:
        return self.limits[LIMIT_KINDS.index(kind)]

    def to_json(self) -> dict[str, Any]:
        return {kind.name: self[kind].to_json() for kind in LIMIT_KINDS}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RateLimits":
        # A kind added since the policy was stored has no limit in it.
        return cls(
            **{
                kind.name: RateLimit.from_json(data[kind.name])
                for kind in LIMIT_KINDS
                if kind.name in data
            }
        )


@dataclass(frozen=True)
class Budgets:
    """Spend limits in micro-USD (integers, so sums are exact); 0 means none."""

    daily: int = 0
    monthly: int = 0
    total: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"daily": self.daily, "monthly": self.monthly, "total": self.total}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Budgets":
        return cls(data["daily"], data["monthly"], data["total"])


@dataclass(frozen=True)
class Policy:
    """Access rules, limits and budgets; an empty list or a 0 allows everything."""

    allowed_models: tuple[str, ...] = ()
    allowed_ip_ranges: tuple[str, ...] = ()
    read_only: bool = False
    rate_limits: RateLimits = RateLimits()
    budgets: Budgets = Budgets()

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed_models": list(self.allowed_models),
            "allowed_ip_ranges": list(self.allowed_ip_ranges),
            "read_only": self.read_only,
            "rate_limits": self.rate_limits.to_json(),
            "budgets": self.budgets.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Policy":
        return cls(
            tuple(data["allowed_models"]),
            tuple(data["allowed_ip_ranges"]),
            data["read_only"],
            RateLimits.from_json(data["rate_limits"]),
            Budgets.from_json(data["budgets"]),
        )


# What the request log keeps of an org's bodies (prism.v1.BodyLogging).
BODY_LOGGING = ("none", "metadata", "full")


@dataclass(frozen=True)
class RequestLogging:
    """What the request log keeps of an org's bodies: `none`, `metadata` (content type, size,
    object ids) or `full` (also the text, up to max_body_bytes; 0 means the default)."""

    bodies: str = "none"
    max_body_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"bodies": self.bodies, "max_body_bytes": self.max_body_bytes}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "RequestLogging":
        # Orgs stored before request logging existed log no bodies.
        if data is None:
            return cls()
        return cls(data["bodies"], data["max_body_bytes"])


@dataclass(frozen=True)
class OrgRecord:
    id: str
    display_name: str
    create_time: datetime
    update_time: datetime
    metadata: dict[str, str] = field(default_factory=dict)
    policy: Policy = Policy()
    # The org's own upstream key, sealed with PRISM_MASTER_KEY (see credentials.py); None
    # when the org's requests go upstream with the gateway's key. Kept out of repr.
    upstream_credential: str | None = field(default=None, repr=False)
    request_logging: RequestLogging = RequestLogging()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "create_time": _iso(self.create_time),
            "update_time": _iso(self.update_time),
            "metadata": self.metadata,
            "policy": self.policy.to_json(),
            "upstream_credential": self.upstream_credential,
            "request_logging": self.request_logging.to_json(),
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
            upstream_credential=data["upstream_credential"],
            request_logging=RequestLogging.from_json(data.get("request_logging")),
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
