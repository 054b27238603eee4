"""`FakeChat`: start() it inside the test's event loop, script its answers with `Reply` and
`Failure`, read back what it `received`. `refused_url()` is an address nothing listens on."""

import asyncio
import json
import socket
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    """A streamed completion: `text` pieces as content deltas, then `tool_calls` fragments
    (each a raw delta `tool_calls` list, one chunk apiece), the finish_reason chunk, the
    usage chunk when asked for, and [DONE]. `delay` goes before every chunk; `cut_after`
    drops the connection after that many chunks; `stream_error` ends the stream after the
    text with an error event, as providers do when they fail mid-generation."""

    text: list[str] = field(default_factory=list)
    tool_calls: list[list[dict[str, Any]]] = field(default_factory=list)
    finish_reason: str = "stop"
    usage: dict[str, Any] | None = None
    delay: float = 0.0
    cut_after: int | None = None
    stream_error: str | None = None


@dataclass
class Failure:
    status: int
    message: str = "the fake provider failed on purpose"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeChat:
    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.script: deque[Reply | Failure] = deque()
        self.received: list[Received] = []
        # Set when a streamed reply's last byte has been written.
        self.finished = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to answer
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        _method, path, _version = head[0].split(" ", 2)
        headers = {
            name.strip().lower(): value.strip()
            for name, value in (line.split(":", 1) for line in head[1:] if ":" in line)
        }
        body = json.loads(await reader.readexactly(int(headers.get("content-length", "0"))))
        self.received.append(Received(path, headers, body))
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            # Like OpenAI's 401, which quotes the key it was given.
            given = headers.get("authorization", "").removeprefix("Bearer ")
            await _send_error(writer, 401, f"Incorrect API key provided: {given}")
            return
        step = self.script.popleft() if self.script else Reply(text=["Hello", "!"])
        if isinstance(step, Failure):
            await _send_error(writer, step.status, step.message)
            return
        await self._stream(writer, step, body)

    async def _stream(self, writer: asyncio.StreamWriter, reply: Reply, request: dict) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        )
        await writer.drain()
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1767225600,
            "model": request.get("model"),
        }

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return {**base, "choices": [choice]}

        events: list[dict[str, Any] | str] = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in reply.text]
        if reply.stream_error is not None:
            events.append({"error": {"message": reply.stream_error, "type": "server_error"}})
        events += [chunk({"tool_calls": fragments}) for fragments in reply.tool_calls]
        events.append(chunk({}, reply.finish_reason))
        if (request.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": reply.usage})
        events.append("[DONE]")
        for number, event in enumerate(events):
            if reply.cut_after is not None and number == reply.cut_after:
                writer.transport.abort()
                return
            await asyncio.sleep(reply.delay)
            data = event if isinstance(event, str) else json.dumps(event)
            payload = f"data: {data}\n\n".encode()
            writer.write(b"%x\r\n%s\r\n" % (len(payload), payload))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        self.finished.set()


async def _send_error(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    payload = json.dumps({"error": {"message": message, "type": "fake_error", "code": None}})
    writer.write(
        f"HTTP/1.1 {status} Fake\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n{payload}".encode()
    )
    await writer.drain()


def refused_url() -> str:
    """A local URL whose port was free a moment ago, so connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
