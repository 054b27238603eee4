"""The keys a control plane remembers: per secret hash, the key's and its org's records as
last read, with the digests lua/verify.lua compares them by and where the org's requests go.
Nothing is invalidated: the check script answers with fresh records when they changed."""

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass

from controlplane import keys
from controlplane.accounts import Accounts
from controlplane.check_request import Upstream
from controlplane.credentials import Sealer, SealError
from controlplane.errors import Unavailable
from controlplane.records import KeyRecord, OrgRecord

# Principals remembered per control plane; each is a few KiB.
_REMEMBERED_KEYS = 10_000


@dataclass(frozen=True)
class KnownKey:
    """A key and its org as last read, with the digests the check script compares."""

    key: KeyRecord
    org: OrgRecord
    key_digest: str
    org_digest: str
    upstream: Upstream


class KnownKeys:
    def __init__(self, accounts: Accounts, upstream: Upstream, sealer: Sealer | None) -> None:
        self._accounts = accounts
        self._upstream = upstream
        self._sealer = sealer
        self._known: OrderedDict[str, KnownKey] = OrderedDict()

    async def find(self, secret_sha256: str) -> KnownKey | None:
        """The key with this secret hash as remembered, else as stored now; None when no key
        has it."""
        known = self._known.get(secret_sha256)
        if known is not None:
            self._known.move_to_end(secret_sha256)
            return known
        stored = await self.stored(secret_sha256)
        return self.remember(secret_sha256, *stored) if stored else None

    def forget(self, secret_sha256: str) -> None:
        self._known.pop(secret_sha256, None)

    async def stored(self, secret_sha256: str) -> tuple[str, str] | None:
        """The records (JSON) of the key with this secret hash and of its org, as stored now;
        None when no key has it."""
        found = await self._accounts.find_key(secret_sha256)
        stored = found and await self._accounts.load_raw(*found)
        # A RotateKey writes the key's new record before it deletes the old hash's entry
        # (controlplane/accounts.py), so only the record's own hash finds the key.
        if not stored or json.loads(stored[0])["secret_sha256"] != secret_sha256:
            return None
        return stored

    def remember(self, secret_sha256: str, key_json: str, org_json: str) -> KnownKey:
        key, org = records(key_json, org_json)
        known = KnownKey(key, org, _digest(key_json), _digest(org_json), self.upstream_for(org))
        self._known[secret_sha256] = known
        self._known.move_to_end(secret_sha256)
        if len(self._known) > _REMEMBERED_KEYS:
            self._known.popitem(last=False)
        return known

    def upstream_for(self, org: OrgRecord) -> Upstream:
        """Where and with which credential the org's requests go."""
        if org.upstream_credential is None:
            return self._upstream
        if self._sealer is None:
            raise Unavailable(
                f"org '{org.id}' has its own upstream credential but PRISM_MASTER_KEY is not set"
            )
        try:
            credential = self._sealer.open(org.id, org.upstream_credential)
        except SealError as error:
            raise Unavailable(str(error)) from None
        return Upstream(self._upstream.base_url, credential)


def secret_hash(presented: str) -> str:
    """The SHA-256 to look a presented key up by; "" for one Prism cannot have issued, which
    costs no Redis round trip."""
    return keys.sha256(presented) if keys.is_well_formed(presented) else ""


def records(key_json: str, org_json: str) -> tuple[KeyRecord, OrgRecord]:
    return KeyRecord.from_json(json.loads(key_json)), OrgRecord.from_json(json.loads(org_json))


def _digest(record_json: str) -> str:
    """What lua/verify.lua compares with redis.sha1hex; not a secret's hash."""
    return hashlib.sha1(record_json.encode()).hexdigest()
