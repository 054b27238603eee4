"""What every Redis part of the control plane shares: its client, the mapping of a Redis
that does not answer to Unavailable, and paging over the score-0 sorted sets that index ids.

Nothing is cached in the process, so replicas never disagree.
"""

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from controlplane.errors import Unavailable
from prism.redis_client import UNREACHABLE, AsyncRedis

Params = ParamSpec("Params")
Result = TypeVar("Result")


def unavailable_on_connection_error(
    call: Callable[Params, Awaitable[Result]],
) -> Callable[Params, Awaitable[Result]]:
    @wraps(call)
    async def guarded(*args: Params.args, **kwargs: Params.kwargs) -> Result:
        try:
            return await call(*args, **kwargs)
        except UNREACHABLE as error:
            raise Unavailable(f"Redis (REDIS_URL) did not answer: {error}") from error

    return guarded


class RedisPart:
    """A part of the control plane's Redis data. Parts that register scripts extend
    __init__ and call super().__init__ first, so that each registers its own."""

    def __init__(self, client: AsyncRedis) -> None:
        self._redis = client


@unavailable_on_connection_error
async def ping(client: AsyncRedis) -> None:
    await client.ping()


async def page_of_ids(
    client: AsyncRedis, index: str, after: str, count: int
) -> tuple[list[str], str]:
    """Up to count members of a score-0 sorted set after `after` in lexicographic order, and
    the last of them when more follow (records deleted meanwhile are skipped, never the
    cursor)."""
    start = f"({after}" if after else "-"
    ids = await client.zrange(index, start, "+", bylex=True, offset=0, num=count + 1)
    page = ids[:count]
    return page, page[-1] if len(ids) > count else ""
