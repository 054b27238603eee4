"""The one place Prism's processes make Redis clients, single Redis or Redis Cluster alike.

The URL chooses: `redis://` and `rediss://` (TLS) name one Redis; `redis+cluster://` and
`rediss+cluster://` name any node of a Redis Cluster, from which the client learns the others
and follows the slots as they move. Cluster mode has only database 0.

The data Prism keeps is laid out so every script and transaction touches one Cluster slot
(prism/redis_keys.py); what reads or writes several slots goes through the helpers here, which
do it in one round trip on a single Redis and per node on a cluster.
"""

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.commands.core import AsyncScript

_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
SCHEMES = ("redis", "rediss", "unix", *_CLUSTER_SCHEMES)

AsyncRedis = redis.asyncio.Redis | redis.asyncio.RedisCluster
SyncRedis = redis.Redis | redis.RedisCluster


# Every error a Redis call may raise: redis-py's cluster client raises some that are not
# RedisErrors (a slot no master serves, a transaction across slots).
ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException)
# Those that mean Redis cannot answer now, for a single Redis or (a master down, its slots
# not served) for the part of a cluster the call needed.
UNREACHABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.SlotNotCoveredError,
)


# redis-py 8 refuses a call past 100 connections in use ("Too many connections"), and a
# control plane holds one per Check in flight: a burst of more concurrent requests than that
# on one control plane had the rest answered 503. Bursts are bounded by the callers'
# deadlines instead, far below Redis's own limit (maxclients, 10,000 by default). Per
# process, and per node on a cluster.
MAX_CONNECTIONS = 1024


class UnusableRedisUrl(ValueError):
    """The URL cannot name a Redis this module connects to; the message says why."""


def is_cluster(url: str) -> bool:
    return urlsplit(url).scheme in _CLUSTER_SCHEMES


def check_url(url: str) -> None:
    """Raises UnusableRedisUrl unless url names a Redis (or a cluster node) we can use."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not (parts.netloc or parts.path):
        raise UnusableRedisUrl(
            "is not a Redis URL (e.g. redis://127.0.0.1:6379/0, or "
            "redis+cluster://10.0.0.1:6379 for a Redis Cluster)"
        )
    if parts.scheme in _CLUSTER_SCHEMES:
        if not parts.hostname:
            raise UnusableRedisUrl("names no cluster node (redis+cluster://host:port)")
        if parts.path.strip("/") not in ("", "0"):
            raise UnusableRedisUrl("names a database: a Redis Cluster has only database 0")


def _node_url(url: str) -> str:
    """The cluster URL as redis-py's RedisCluster reads it: its plain scheme, no database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=_CLUSTER_SCHEMES[parts.scheme], path=""))


def async_client(url: str, **options: Any) -> AsyncRedis:
    """An asyncio client for url; options are redis-py's (decode_responses, timeouts)."""
    check_url(url)
    if is_cluster(url):
        return redis.asyncio.RedisCluster.from_url(
            _node_url(url), max_connections=MAX_CONNECTIONS, **options
        )
    return redis.asyncio.Redis.from_url(url, max_connections=MAX_CONNECTIONS, **options)


def sync_client(url: str, **options: Any) -> SyncRedis:
    """A blocking client for url, for tools and tests."""
    check_url(url)
    if is_cluster(url):
        return redis.RedisCluster.from_url(
            _node_url(url), max_connections=MAX_CONNECTIONS, **options
        )
    return redis.Redis.from_url(url, max_connections=MAX_CONNECTIONS, **options)


async def get_many(client: AsyncRedis, names: Sequence[str]) -> list[Any]:
    """GET of every name, in order (None for those missing). One MGET on a single Redis; on a
    cluster one per slot, as MGET refuses names of several slots (not atomic across them,
    which no caller needs: each record is read whole)."""
    if not names:
        return []
    if isinstance(client, redis.asyncio.RedisCluster):
        return await client.mget_nonatomic(list(names))
    return await client.mget(list(names))


async def run_scripts(
    client: AsyncRedis, script: AsyncScript, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]
) -> list[Any]:
    """The script run once per (keys, args) call, answers in order: pipelined in one round
    trip on a single Redis; concurrently on a cluster, whose pipelines refuse scripts (each
    call's keys must share a slot either way)."""
    if isinstance(client, redis.asyncio.RedisCluster):
        return list(await asyncio.gather(*(script(keys=list(k), args=list(a)) for k, a in calls)))
    async with client.pipeline(transaction=False) as pipe:
        for keys, args in calls:
            await script(keys=list(keys), args=list(args), client=pipe)
        return await pipe.execute()
