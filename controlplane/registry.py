"""The admin operations on orgs and keys: their rules and validation, over their records in
Redis (controlplane.accounts)."""

import dataclasses
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from controlplane import keys, paging
from controlplane.accounts import Accounts
from controlplane.credentials import Sealer
from controlplane.errors import FailedPrecondition, InvalidArgument
from controlplane.policy_validation import (
    validated,
    validated_ip_ranges,
    validated_models,
    validated_rate_limits,
)
from controlplane.records import KeyRecord, OrgRecord, Policy, RequestLogging, now

ORG_ID = re.compile(r"[a-z][a-z0-9-]{2,62}")

# Fields an update may replace, as update-mask paths. Policy's sub-fields may be named alone.
ORG_FIELDS = ("display_name", "metadata", "policy", "request_logging")
KEY_FIELDS = ("name", "expire_time", "metadata", "policy")
POLICY_FIELDS = (
    "policy.allowed_models",
    "policy.allowed_ip_ranges",
    "policy.read_only",
    "policy.rate_limits",
    "policy.budgets",
)


class Registry:
    def __init__(self, accounts: Accounts, sealer: Sealer | None = None) -> None:
        self._accounts = accounts
        self._sealer = sealer

    # Orgs

    async def create_org(
        self,
        org_id: str,
        display_name: str,
        metadata: Mapping[str, str],
        policy: Policy,
        request_logging: RequestLogging,
    ) -> OrgRecord:
        if org_id and not ORG_ID.fullmatch(org_id):
            raise InvalidArgument(
                f"org_id {org_id!r} must be 3 to 63 lowercase letters, digits or dashes, "
                "starting with a letter (or empty, to have one generated)"
            )
        created = now()
        org = OrgRecord(
            id=org_id or keys.new_org_id(),
            display_name=display_name,
            create_time=created,
            update_time=created,
            metadata=dict(metadata),
            policy=validated(policy),
            request_logging=request_logging,
        )
        await self._accounts.create_org(org)
        return org

    async def get_org(self, org_id: str) -> OrgRecord:
        return await self._accounts.get_org(_required("id", org_id))

    async def list_orgs(self, page_size: int, page_token: str) -> tuple[list[OrgRecord], str]:
        size = paging.page_size(page_size)
        after = paging.position_after(page_token, "orgs")
        orgs, next_after = await self._accounts.list_orgs(after, size)
        return orgs, paging.next_token("orgs", next_after)

    async def update_org(self, org_id: str, paths: list[str], values: dict[str, Any]) -> OrgRecord:
        fields = _fields(paths, ORG_FIELDS)
        changes = _changes(fields, values)

        def change(org: OrgRecord) -> OrgRecord:
            return dataclasses.replace(org, **_merged(org, changes), update_time=now())

        return await self._accounts.update_org(_required("org.id", org_id), change)

    async def delete_org(self, org_id: str, force: bool) -> None:
        await self._accounts.delete_org(_required("id", org_id), force=force)

    async def set_upstream_credential(self, org_id: str, api_key: str) -> OrgRecord:
        """Seals api_key into the org's record; an empty one removes the org's credential."""
        _required("org_id", org_id)
        if self._sealer is None:
            raise FailedPrecondition(
                "PRISM_MASTER_KEY is not set on the control plane, so upstream credentials "
                "cannot be stored; set it (`openssl rand -base64 32`) and restart"
            )
        credential = api_key.strip()
        sealed = self._sealer.seal(org_id, credential) if credential else None

        def change(org: OrgRecord) -> OrgRecord:
            return dataclasses.replace(org, upstream_credential=sealed, update_time=now())

        return await self._accounts.update_org(org_id, change)

    # Keys

    async def create_key(
        self,
        org_id: str,
        name: str,
        expire_time: datetime | None,
        metadata: Mapping[str, str],
        policy: Policy,
    ) -> tuple[KeyRecord, str]:
        """The new key and its secret, which is not kept."""
        _required("key.org_id", org_id)
        _check_expiry(expire_time)
        secret = keys.new_secret()
        created = now()
        key = KeyRecord(
            id=keys.new_key_id(),
            org_id=org_id,
            name=name,
            display_prefix=keys.display_prefix(secret),
            secret_sha256=keys.sha256(secret),
            create_time=created,
            update_time=created,
            expire_time=expire_time,
            metadata=dict(metadata),
            policy=validated(policy),
        )
        await self._accounts.create_key(key)
        return key, secret

    async def get_key(self, key_id: str) -> KeyRecord:
        return await self._accounts.get_key(_required("id", key_id))

    async def list_keys(
        self, org_id: str, page_size: int, page_token: str
    ) -> tuple[list[KeyRecord], str]:
        size = paging.page_size(page_size)
        listing = f"keys:{org_id}"
        after = paging.position_after(page_token, listing)
        found, next_after = await self._accounts.list_keys(org_id, after, size)
        return found, paging.next_token(listing, next_after)

    async def update_key(self, key_id: str, paths: list[str], values: dict[str, Any]) -> KeyRecord:
        fields = _fields(paths, KEY_FIELDS)
        changes = _changes(fields, values)
        if "expire_time" in changes:
            _check_expiry(changes["expire_time"])

        def change(key: KeyRecord) -> KeyRecord:
            if key.revoked:
                raise FailedPrecondition(
                    f"key '{key.id}' is revoked and cannot be changed; create a new key instead"
                )
            return dataclasses.replace(key, **_merged(key, changes), update_time=now())

        return await self._accounts.update_key(_required("key.id", key_id), change)

    async def revoke_key(self, key_id: str) -> KeyRecord:
        def change(key: KeyRecord) -> KeyRecord:
            if key.revoked:
                return key
            revoked = now()
            return dataclasses.replace(key, revoke_time=revoked, update_time=revoked)

        return await self._accounts.update_key(_required("id", key_id), change)

    async def rotate_key(self, key_id: str) -> tuple[KeyRecord, str]:
        secret = keys.new_secret()

        def change(key: KeyRecord) -> KeyRecord:
            if key.revoked:
                raise FailedPrecondition(
                    f"key '{key.id}' is revoked and cannot be rotated; create a new key instead"
                )
            return dataclasses.replace(
                key,
                display_prefix=keys.display_prefix(secret),
                secret_sha256=keys.sha256(secret),
                update_time=now(),
            )

        return await self._accounts.update_key(_required("id", key_id), change), secret


def _required(name: str, value: str) -> str:
    if not value:
        raise InvalidArgument(f"{name} is required")
    return value


def _check_expiry(expire_time: datetime | None) -> None:
    if expire_time is not None and expire_time <= now():
        raise InvalidArgument(
            f"expire_time {expire_time.isoformat()} is not in the future; leave it unset for a "
            "key that never expires"
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


def _changes(fields: set[str], values: dict[str, Any]) -> dict[str, Any]:
    """What the mask selects from the request, validated: top-level fields by name, and
    `policy.<field>` entries for policy sub-fields replaced alone."""
    changes = {name: values[name] for name in fields if "." not in name}
    if "policy" in changes:
        changes["policy"] = validated(changes["policy"])
    else:
        for path in fields & set(POLICY_FIELDS):
            # Only the named sub-field is validated: the request's others are ignored.
            sub = path.split(".")[1]
            changes[path] = _POLICY_FIELD_CHECKS[sub](getattr(values["policy"], sub))
    if "metadata" in changes:
        changes["metadata"] = dict(changes["metadata"])
    return changes


# How each policy field replaced alone is validated (budgets already were, from the wire).
_POLICY_FIELD_CHECKS: dict[str, Callable[[Any], Any]] = {
    "allowed_models": validated_models,
    "allowed_ip_ranges": validated_ip_ranges,
    "read_only": bool,
    "rate_limits": validated_rate_limits,
    "budgets": lambda budgets: budgets,
}


def _merged(record: OrgRecord | KeyRecord, changes: dict[str, Any]) -> dict[str, Any]:
    """The dataclass fields to replace on record: sub-field changes fold into its policy."""
    merged = {name: value for name, value in changes.items() if "." not in name}
    sub = {path.split(".")[1]: value for path, value in changes.items() if "." in path}
    if sub:
        merged["policy"] = dataclasses.replace(record.policy, **sub)
    return merged
