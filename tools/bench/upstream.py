"""`python -m tools.bench.upstream --listen HOST:PORT`: the overhead bench's minimal upstream.

Raw asyncio on uvloop, HTTP/1.1 with keep-alive, no framework: it answers
`POST /v1/threads` with a new thread and `GET /v1/threads/{id}` with that thread, a fixed
JSON body, and everything else 404; so next to it the cost of what sits in front of it
(the gateway, the floor, a peer) stands out.
"""

import argparse
import asyncio
import json
import secrets
from typing import cast

import uvloop

THREADS = b"/v1/threads"
_MAX_HEAD = 64 * 1024


def thread_body(thread_id: str) -> bytes:
    """The thread every route of the bench answers: the same bytes from the upstream and
    from the floor."""
    thread = {
        "id": thread_id,
        "object": "thread",
        "created_at": 1_700_000_000,
        "metadata": {},
        "tool_resources": {},
    }
    return json.dumps(thread, separators=(",", ":")).encode()


_NOT_FOUND = json.dumps(
    {"error": {"message": "not found", "type": "invalid_request_error", "code": None}}
).encode()


def _response(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def answer(method: bytes, target: bytes) -> bytes:
    path = target.partition(b"?")[0]
    if method == b"POST" and path == THREADS:
        return _response(b"200 OK", thread_body("thread_" + secrets.token_hex(12)))
    prefix, _, thread_id = path.rpartition(b"/")
    if method == b"GET" and prefix == THREADS and thread_id:
        return _response(b"200 OK", thread_body(thread_id.decode()))
    return _response(b"404 Not Found", _NOT_FOUND)


class _Connection(asyncio.Protocol):
    """Parses requests as they arrive (a head, then a Content-Length body, which is
    skipped) and answers each in order."""

    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEAD:
                    self._transport.close()
                return
            head = self._buffer[:end].split(b"\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length :]
            method, target, _ = head[0].split(b" ", 2)
            self._transport.write(answer(method, target))


async def serve(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Connection, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    host, _, port = parser.parse_args().listen.rpartition(":")
    uvloop.run(serve(host, int(port)))


if __name__ == "__main__":
    main()
