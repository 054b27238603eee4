"""The data plane's pool of HTTP/1.1 connections to the upstream.

httpcore's own pool (the one behind httpx) re-examines every connection it holds, with a
system call each, whenever a request starts or ends. Its cost grows with the number of
requests in flight: with 64 concurrent clients it was most of the gateway's CPU and capped it
near 70 requests/s. This pool keeps idle connections on a stack per origin: a request takes
the most recently used one (checking only that one) or opens a new connection, and the
connection goes back on the stack when its response is closed. The connections themselves
are httpcore's.
"""

from collections import deque
from collections.abc import AsyncIterator
from typing import Protocol

import httpcore

# httpcore's Origin is not hashable.
_Key = tuple[bytes, bytes, int]


def _key(origin: httpcore.Origin) -> _Key:
    return origin.scheme, origin.host, origin.port


class _Body(Protocol):
    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class ConnectionPool:
    def __init__(self, max_idle_per_origin: int, keepalive_expiry: float) -> None:
        self._max_idle = max_idle_per_origin
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = httpcore.default_ssl_context()
        # Per origin, oldest first: requests take from the right, expiry trims the left.
        self._idle: dict[_Key, deque[httpcore.AsyncHTTPConnection]] = {}

    async def send(self, request: httpcore.Request) -> httpcore.Response:
        """Sends the request; the caller must close the response to free the connection."""
        origin = request.url.origin
        connection = await self._take_idle(origin) or httpcore.AsyncHTTPConnection(
            origin, ssl_context=self._ssl_context, keepalive_expiry=self._keepalive_expiry
        )
        try:
            response = await connection.handle_async_request(request)
        except BaseException:
            await connection.aclose()
            raise
        body: _Body = response.stream  # type: ignore[assignment]  # async connection: async body
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_ReturnedOnClose(body, origin, connection, self),
            extensions=response.extensions,
        )

    async def close(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()

    async def _take_idle(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection | None:
        idle = self._idle.get(_key(origin))
        while idle:
            connection = idle.pop()
            # Expired: past its keep-alive, or the upstream closed it.
            if not connection.has_expired():
                return connection
            await connection.aclose()
        return None

    async def _give_back(
        self, origin: httpcore.Origin, connection: httpcore.AsyncHTTPConnection
    ) -> None:
        idle = self._idle.setdefault(_key(origin), deque())
        while idle and idle[0].has_expired():
            await idle.popleft().aclose()
        # Not idle: the response was abandoned midway, and httpcore closed the connection.
        if connection.is_idle() and len(idle) < self._max_idle:
            idle.append(connection)
        else:
            await connection.aclose()


class _ReturnedOnClose:
    """A response body that gives its connection back to the pool once closed."""

    def __init__(
        self,
        stream: _Body,
        origin: httpcore.Origin,
        connection: httpcore.AsyncHTTPConnection,
        pool: ConnectionPool,
    ) -> None:
        self._stream = stream
        self._origin = origin
        self._connection = connection
        self._pool = pool
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._stream.aclose()
        await self._pool._give_back(self._origin, self._connection)
