"""Check: whether one proxied request may pass, and where it goes if it may."""

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from controlplane import key_material, policy
from controlplane.policy import Denial
from controlplane.records import now
from controlplane.store import Store


@dataclass(frozen=True)
class Upstream:
    base_url: str
    api_key: str

    @property
    def provider(self) -> str:
        return urlsplit(self.base_url).netloc


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
            await self._store.lookup(key_material.sha256(api_key))
            if key_material.looks_like_secret(api_key)
            else None
        )
        if found is None:
            return Decision(policy.unknown_key(api_key))
        key, org = found
        principal = Principal(org.id, key.id, key.display_prefix)
        denial = policy.decide(key, org, models, client_ip, now())
        if denial:
            return Decision(denial, principal)
        return Decision(principal=principal, upstream=self._upstream)
