"""What Validate answers an internal service about a key (never its hash or an upstream
secret), and the route templates it may ask about."""

from dataclasses import dataclass

from controlplane.errors import InvalidArgument
from controlplane.policy import Denial

_ROUTE_METHODS = frozenset({"GET", "POST", "DELETE"})


@dataclass(frozen=True)
class KeyInfo:
    """What an internal service may know of a key: never its hash or an upstream secret."""

    org_id: str
    key_id: str
    key_display_prefix: str
    name: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class Validation:
    # The key exists and is neither revoked nor expired.
    valid: bool
    # Set when the key was recognised.
    key: KeyInfo | None = None
    # Why it is not valid, or the rule that refuses what was asked about.
    denial: Denial | None = None

    @property
    def allowed(self) -> bool:
        return self.valid and self.denial is None


def method_of(route: str) -> str:
    """The method of a route template (`POST /v1/threads/{thread_id}/runs`)."""
    method, _, path = route.partition(" ")
    if method not in _ROUTE_METHODS or not path.startswith("/v1/"):
        raise InvalidArgument(
            f"route {route!r} is not 'METHOD /v1/path-template', such as "
            "'POST /v1/threads/{thread_id}/runs'"
        )
    return method
