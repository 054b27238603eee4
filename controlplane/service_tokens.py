"""Service tokens: the credentials internal services present to prism.v1.Keys.

Admin issues and revokes them. Like keys, only a token's SHA-256 is stored; the secret is in
the CreateServiceToken reply and nowhere else. A token is valid while its hash is indexed:
revoking it removes the index entry, so the next call with it is refused.

A token's record, the list of tokens and the hash index are in different Redis Cluster slots,
so they are written in ordered steps: a new token's hash entry last (it is valid once listed),
a revoked token's hash entry first (it is refused before its record says so). A RevokeServiceToken
that died between its steps is finished by the next; one that died creating leaves a listed
token whose secret nobody got and nothing accepts.
"""

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from redis.asyncio.client import Pipeline

from controlplane import keys, paging
from controlplane.errors import InvalidArgument, NotFound
from controlplane.records import now
from controlplane.redis_access import RedisPart, page_of_ids, unavailable_on_connection_error
from prism import redis_keys
from prism.redis_client import get_many

_MAX_NAME = 200


@dataclass(frozen=True)
class ServiceTokenRecord:
    id: str
    name: str
    display_prefix: str
    secret_sha256: str
    create_time: datetime
    revoke_time: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "display_prefix": self.display_prefix,
            "secret_sha256": self.secret_sha256,
            "create_time": self.create_time.isoformat(),
            "revoke_time": self.revoke_time.isoformat() if self.revoke_time else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ServiceTokenRecord":
        revoked = data["revoke_time"]
        return cls(
            id=data["id"],
            name=data["name"],
            display_prefix=data["display_prefix"],
            secret_sha256=data["secret_sha256"],
            create_time=datetime.fromisoformat(data["create_time"]),
            revoke_time=datetime.fromisoformat(revoked) if revoked else None,
        )


class ServiceTokens(RedisPart):
    @unavailable_on_connection_error
    async def create(self, name: str) -> tuple[ServiceTokenRecord, str]:
        name = name.strip()
        if not name or len(name) > _MAX_NAME:
            raise InvalidArgument(
                f"name is required (1 to {_MAX_NAME} characters): who the token is for, "
                "such as 'billing-service'"
            )
        secret = keys.new_service_secret()
        record = ServiceTokenRecord(
            id=keys.new_service_token_id(),
            name=name,
            display_prefix=keys.display_prefix(secret),
            secret_sha256=keys.sha256(secret),
            create_time=now(),
        )
        await self._redis.set(redis_keys.service_token(record.id), _dump(record))
        await self._redis.zadd(redis_keys.SERVICE_TOKENS, {record.id: 0})
        await self._redis.set(redis_keys.service_token_by_hash(record.secret_sha256), record.id)
        return record, secret

    @unavailable_on_connection_error
    async def list(self, page_size: int, page_token: str) -> tuple[list[ServiceTokenRecord], str]:
        size = paging.page_size(page_size)
        after = paging.position_after(page_token, "service-tokens")
        ids, next_after = await page_of_ids(self._redis, redis_keys.SERVICE_TOKENS, after, size)
        stored = await get_many(self._redis, [redis_keys.service_token(i) for i in ids])
        tokens = [ServiceTokenRecord.from_json(json.loads(raw)) for raw in stored if raw]
        return tokens, paging.next_token("service-tokens", next_after)

    @unavailable_on_connection_error
    async def revoke(self, token_id: str) -> ServiceTokenRecord:
        if not token_id:
            raise InvalidArgument("id is required")
        record_key = redis_keys.service_token(token_id)
        raw = await self._redis.get(record_key)
        if raw is None:
            raise NotFound(f"service token '{token_id}' not found")
        # Every revoke, the first or one again, takes the secret's entry out before the record
        # says revoked (the secret never changes, so reading it outside the transaction is
        # exact).
        secret_sha256 = ServiceTokenRecord.from_json(json.loads(raw)).secret_sha256
        await self._redis.delete(redis_keys.service_token_by_hash(secret_sha256))

        async def revoke(pipe: Pipeline) -> ServiceTokenRecord:
            record = ServiceTokenRecord.from_json(json.loads(await pipe.get(record_key)))
            pipe.multi()
            if record.revoke_time is not None:
                return record
            revoked = replace(record, revoke_time=now())
            pipe.set(record_key, _dump(revoked))
            return revoked

        return await self._redis.transaction(revoke, record_key, value_from_callable=True)

    @unavailable_on_connection_error
    async def is_valid(self, presented: str) -> bool:
        """Whether presented is the secret of an unrevoked service token."""
        if not presented.startswith(keys.SERVICE_SECRET_PREFIX):
            return False
        return bool(
            await self._redis.exists(redis_keys.service_token_by_hash(keys.sha256(presented)))
        )


def _dump(record: ServiceTokenRecord) -> str:
    return json.dumps(record.to_json(), separators=(",", ":"))
