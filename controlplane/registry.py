"""The admin operations on orgs and keys: their rules and validation, over the Store."""

import base64
import binascii
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controlplane import key_material
from controlplane.errors import FailedPrecondition, InvalidArgument
from controlplane.policy import validated
from controlplane.records import Key, Org, Policy, now
from controlplane.store import Store

ORG_ID = re.compile(r"[a-z][a-z0-9-]{2,62}")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

# Fields an update may replace, as update-mask paths. Policy's sub-fields may be named alone.
ORG_FIELDS = ("display_name", "metadata", "policy")
KEY_FIELDS = ("name", "expire_time", "metadata", "policy")
POLICY_FIELDS = ("policy.allowed_models", "policy.allowed_ip_ranges")


@dataclass(frozen=True)
class Page:
    size: int
    after: str


class Registry:
    def __init__(self, store: Store) -> None:
        self._store = store

    # Orgs

    async def create_org(
        self, org_id: str, display_name: str, metadata: Mapping[str, str], policy: Policy
    ) -> Org:
        if org_id and not ORG_ID.fullmatch(org_id):
            raise InvalidArgument(
                f"org_id {org_id!r} must be 3 to 63 lowercase letters, digits or dashes, "
                "starting with a letter"
            )
        created = now()
        org = Org(
            id=org_id or key_material.new_org_id(),
            display_name=display_name,
            create_time=created,
            update_time=created,
            metadata=dict(metadata),
            policy=validated(policy),
        )
        await self._store.create_org(org)
        return org

    async def get_org(self, org_id: str) -> Org:
        return await self._store.get_org(_required("id", org_id))

    async def list_orgs(self, page_size: int, page_token: str) -> tuple[list[Org], str]:
        page = _page(page_size, page_token)
        orgs, more = await self._store.list_orgs(page.after, page.size)
        return orgs, _next_token(more, orgs)

    async def update_org(self, org_id: str, paths: list[str], values: dict[str, Any]) -> Org:
        fields = _fields(paths, ORG_FIELDS)

        def change(org: Org) -> Org:
            return dataclasses.replace(org, **_changes(org, fields, values), update_time=now())

        return await self._store.update_org(_required("org.id", org_id), change)

    async def delete_org(self, org_id: str, force: bool) -> None:
        await self._store.delete_org(_required("id", org_id), force=force)

    # Keys

    async def create_key(
        self,
        org_id: str,
        name: str,
        expire_time: datetime | None,
        metadata: Mapping[str, str],
        policy: Policy,
    ) -> tuple[Key, str]:
        """The new key and its secret, which is not kept."""
        _required("key.org_id", org_id)
        _check_expiry(expire_time)
        secret = key_material.new_secret()
        created = now()
        key = Key(
            id=key_material.new_key_id(),
            org_id=org_id,
            name=name,
            display_prefix=key_material.display_prefix(secret),
            secret_sha256=key_material.sha256(secret),
            create_time=created,
            update_time=created,
            expire_time=expire_time,
            metadata=dict(metadata),
            policy=validated(policy),
        )
        await self._store.create_key(key)
        return key, secret

    async def get_key(self, key_id: str) -> Key:
        return await self._store.get_key(_required("id", key_id))

    async def list_keys(
        self, org_id: str, page_size: int, page_token: str
    ) -> tuple[list[Key], str]:
        page = _page(page_size, page_token)
        keys, more = await self._store.list_keys(org_id, page.after, page.size)
        return keys, _next_token(more, keys)

    async def update_key(self, key_id: str, paths: list[str], values: dict[str, Any]) -> Key:
        fields = _fields(paths, KEY_FIELDS)
        if "expire_time" in fields:
            _check_expiry(values["expire_time"])

        def change(key: Key) -> Key:
            if key.revoked:
                raise FailedPrecondition(f"key '{key.id}' is revoked; create a new key instead")
            return dataclasses.replace(key, **_changes(key, fields, values), update_time=now())

        return await self._store.update_key(_required("key.id", key_id), change)

    async def revoke_key(self, key_id: str) -> Key:
        def change(key: Key) -> Key:
            if key.revoked:
                return key
            revoked = now()
            return dataclasses.replace(key, revoke_time=revoked, update_time=revoked)

        return await self._store.update_key(_required("id", key_id), change)

    async def rotate_key(self, key_id: str) -> tuple[Key, str]:
        secret = key_material.new_secret()

        def change(key: Key) -> Key:
            if key.revoked:
                raise FailedPrecondition(f"key '{key.id}' is revoked; create a new key instead")
            return dataclasses.replace(
                key,
                display_prefix=key_material.display_prefix(secret),
                secret_sha256=key_material.sha256(secret),
                update_time=now(),
            )

        return await self._store.update_key(_required("id", key_id), change), secret


def _required(name: str, value: str) -> str:
    if not value:
        raise InvalidArgument(f"{name} is required")
    return value


def _check_expiry(expire_time: datetime | None) -> None:
    if expire_time is not None and expire_time <= now():
        raise InvalidArgument(
            f"expire_time {expire_time.isoformat()} is in the past; leave it unset for a key "
            "that never expires"
        )


def _fields(paths: list[str], top_level: tuple[str, ...]) -> set[str]:
    """The update mask's paths, checked; an empty mask means every updatable field."""
    allowed = (*top_level, *POLICY_FIELDS)
    unknown = [path for path in paths if path not in allowed]
    if unknown:
        raise InvalidArgument(
            f"update_mask: cannot update {', '.join(unknown)}; updatable: {', '.join(allowed)}"
        )
    return set(paths or top_level)


def _changes(record: Org | Key, fields: set[str], values: dict[str, Any]) -> dict[str, Any]:
    """The dataclass fields to replace, from the mask's paths and the request's values."""
    changes = {name: values[name] for name in fields if "." not in name and name != "policy"}
    if "policy" in fields:
        changes["policy"] = validated(values["policy"])
    elif fields & set(POLICY_FIELDS):
        sub = {
            path.split(".")[1]: getattr(values["policy"], path.split(".")[1])
            for path in fields
            if path in POLICY_FIELDS
        }
        changes["policy"] = validated(dataclasses.replace(record.policy, **sub))
    if "metadata" in changes:
        changes["metadata"] = dict(changes["metadata"])
    return changes


def _page(page_size: int, page_token: str) -> Page:
    if not 0 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be between 0 and {MAX_PAGE_SIZE}")
    after = ""
    if page_token:
        try:
            after = base64.urlsafe_b64decode(page_token.encode()).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidArgument(
                "page_token is not one this server issued; pass next_page_token unchanged"
            ) from None
        if not after:
            raise InvalidArgument("page_token is empty after decoding; pass next_page_token")
    return Page(page_size or DEFAULT_PAGE_SIZE, after)


def _next_token(more: bool, records: list[Org] | list[Key]) -> str:
    return base64.urlsafe_b64encode(records[-1].id.encode()).decode() if more else ""
