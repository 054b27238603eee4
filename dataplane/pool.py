"""The data plane's pool of HTTP/1.1 connections to the upstream (http11.py).

Idle connections are kept on a stack per origin: a request takes the most recently used one
(checking only that one, without a system call: http11.Connection.has_expired) or opens a
new connection, and the connection goes back on the stack when its response is closed
having been read to its end; a GET or HEAD that a reused connection breaks before its
answer goes once more on a new one. A pool that re-examined every connection it holds
whenever a request starts or ends (httpcore's, behind httpx) spent, with 64 concurrent
clients, most of the gateway's CPU on it.
"""

import ssl
from collections import deque

from .http11 import Connection, Origin, Request, Response, UpstreamBroken

# Sent again, once, on a new connection when a kept-alive one breaks before the answer's
# head: the upstream may have closed it (its keep-alive ran out) just as the request went
# out, which no check before sending can rule out. These methods are safe to repeat if the
# first was received after all (RFC 9110 9.2.1); Go's net/http retries them likewise.
_REPLAYABLE_METHODS = frozenset({b"GET", b"HEAD"})


class ConnectionPool:
    def __init__(self, max_idle_per_origin: int, keepalive_expiry: float) -> None:
        self._max_idle = max_idle_per_origin
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl.create_default_context()
        # Per origin, oldest first: requests take from the right, expiry trims the left.
        self._idle: dict[Origin, deque[Connection]] = {}

    async def send(self, origin: Origin, request: Request, timeout: float) -> Response:
        """Sends the request; the caller must close the response to free the connection."""
        idle = await self._take_idle(origin)
        connection = idle or self._new_connection(origin)
        try:
            response = await _send_or_close(connection, request, timeout)
        except UpstreamBroken:
            if idle is None or not _replayable(request):
                raise
            connection = self._new_connection(origin)
            response = await _send_or_close(connection, request, timeout)
        response.on_close(lambda: self._give_back(origin, connection))
        return response

    def _new_connection(self, origin: Origin) -> Connection:
        return Connection(origin, self._ssl_context, self._keepalive_expiry)

    async def close(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()

    async def _take_idle(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not connection.has_expired():
                return connection
            await connection.aclose()
        return None

    async def _give_back(self, origin: Origin, connection: Connection) -> None:
        idle = self._idle.setdefault(origin, deque())
        while idle and idle[0].has_expired():
            await idle.popleft().aclose()
        # Not idle: the response was abandoned midway, so the connection cannot be reused.
        if connection.is_idle() and len(idle) < self._max_idle:
            idle.append(connection)
        else:
            await connection.aclose()


async def _send_or_close(connection: Connection, request: Request, timeout: float) -> Response:
    try:
        return await connection.send(request, timeout)
    except BaseException:
        await connection.aclose()
        raise


def _replayable(request: Request) -> bool:
    # A streamed body is spent once sent, so only one held whole (or none) can go again.
    return request.method in _REPLAYABLE_METHODS and (
        request.content is None or isinstance(request.content, bytes)
    )
