"""The data plane's upstream pool against an upstream that closes a kept-alive connection
just as the next request goes out (its keep-alive ran out then): a GET is answered from a new
connection instead of failing the client with a 502; a POST, which may have been received,
is not sent twice."""

import asyncio

import pytest

from dataplane.http11 import Origin, Request, UpstreamBroken
from dataplane.pool import ConnectionPool

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class ClosingUpstream:
    """Answers the first request on each connection and closes the connection, unanswered,
    when a second one arrives on it; with `answers_once`, answers only the very first
    request of all. Keeps the method of each request it read."""

    def __init__(self, answers_once: bool = False) -> None:
        self.requests: list[bytes] = []
        self._answers_once = answers_once

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = self._answers_once and bool(self.requests)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                self.requests.append(head.split(b" ", 1)[0])
                if answered:
                    break
                writer.write(ANSWER)
                await writer.drain()
                answered = True
        except asyncio.IncompleteReadError:
            pass
        writer.close()


def _send_in_turn(upstream: ClosingUpstream, methods: list[bytes]) -> list[int]:
    """Sends the requests one after another through one pool; their statuses."""

    async def scenario() -> list[int]:
        server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
        origin = Origin("http", "127.0.0.1", server.sockets[0].getsockname()[1])
        pool = ConnectionPool(max_idle_per_origin=4, keepalive_expiry=30)
        statuses = []
        try:
            for method in methods:
                body = b"{}" if method == b"POST" else None
                headers = [(b"host", b"upstream")]
                if body:
                    headers.append((b"content-length", b"2"))
                request = Request(method, b"/v1/threads/thread_abc", headers, body)
                response = await pool.send(origin, request, 5)
                await response.read()
                await response.aclose()
                statuses.append(response.status)
        finally:
            await pool.close()
            server.close()
            await server.wait_closed()
        return statuses

    return asyncio.run(scenario())


def test_a_get_on_a_connection_the_upstream_closed_is_sent_again_on_a_new_one() -> None:
    upstream = ClosingUpstream()
    assert _send_in_turn(upstream, [b"GET", b"GET"]) == [200, 200]
    # The second went out on the kept-alive connection, then again on a new one.
    assert upstream.requests == [b"GET", b"GET", b"GET"]


def test_a_post_on_such_a_connection_fails_rather_than_being_sent_twice() -> None:
    upstream = ClosingUpstream()
    with pytest.raises(UpstreamBroken):
        _send_in_turn(upstream, [b"GET", b"POST"])
    assert upstream.requests == [b"GET", b"POST"]


def test_a_get_is_sent_again_only_once() -> None:
    """When the new connection breaks as well, the error is the client's (a 502), after two
    tries rather than a loop."""
    upstream = ClosingUpstream(answers_once=True)
    with pytest.raises(UpstreamBroken):
        _send_in_turn(upstream, [b"GET", b"GET"])
    assert upstream.requests == [b"GET", b"GET", b"GET"]
