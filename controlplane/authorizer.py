"""Check: whether one proxied request may pass, and where it goes if it may.

One Redis round trip per decision (Store.lookup); the secret is only ever hashed here.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from controlplane import keys, policy
from controlplane.policy import Denial
from controlplane.records import now
from controlplane.store import Store


@dataclass(frozen=True)
class Upstream:
    """Where allowed requests go. The api_key is kept out of repr, and so out of logs."""

    base_url: str
    api_key: str = field(repr=False)
    # A short name for clients (`x-prism-provider`): the base URL's host, e.g. api.openai.com.
    provider: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "provider", urlsplit(self.base_url).netloc)


@dataclass(frozen=True)
class Principal:
    org_id: str
    key_id: str
    key_display_prefix: str


@dataclass(frozen=True)
class Decision:
    denial: Denial | None = None
    principal: Principal | None = None
    upstream: Upstream | None = None

    @property
    def allowed(self) -> bool:
        return self.denial is None


class Authorizer:
    def __init__(self, store: Store, upstream: Upstream) -> None:
        self._store = store
        self._upstream = upstream

    async def check(self, api_key: str, client_ip: str, models: Sequence[str]) -> Decision:
        if not api_key:
            return Decision(policy.missing_key())
        # A malformed key cannot exist, so it costs no Redis round trip.
        found = (
            await self._store.lookup(keys.sha256(api_key)) if keys.is_well_formed(api_key) else None
        )
        if found is None:
            return Decision(policy.unknown_key(api_key))
        key, org = found
        principal = Principal(org.id, key.id, key.display_prefix)
        denial = policy.decide(key, org, models, client_ip, now())
        if denial:
            return Decision(denial, principal)
        return Decision(principal=principal, upstream=self._upstream)
