"""The proxy as an ASGI app: `/_proxy/...` steers it, every other request is recorded,
matched against the injected faults and forwarded to the upstream, its response streamed
back (an event stream one whole event at a time, so faults can count events)."""

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from .faults import Fault, FaultError, Faults, parse_fault

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Enough for any test or benchmark run; bounded so a long benchmark cannot grow it forever.
_MAX_RECORDED = 100_000
# Per RFC 9110 §7.6.1, not forwarded by a proxy; host and content-length are set anew.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
_CONTROL = "/_proxy"


class FaultProxy:
    def __init__(self, upstream: str, latency_ms: int = 0) -> None:
        self._upstream = upstream.rstrip("/")
        self._latency = latency_ms / 1000
        self.requests: deque[dict[str, Any]] = deque(maxlen=_MAX_RECORDED)
        self.faults = Faults()
        # No timeouts: a test's stalled upstream is the upstream's business, not the proxy's.
        self._client = httpx.AsyncClient(
            timeout=None,
            # Idle connections to the engine are dropped before its server closes them (at
            # 5 s), so none is reused at that instant (a spurious 502).
            limits=httpx.Limits(
                max_connections=None, max_keepalive_connections=64, keepalive_expiry=2.0
            ),
        )

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self._client)
        elif scope["path"] == _CONTROL or scope["path"].startswith(_CONTROL + "/"):
            await self._control(scope, receive, send)
        else:
            await self._forward(scope, receive, send)

    async def _forward(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        record: dict[str, Any] = {
            "method": method,
            "path": path,
            "query": scope["query_string"].decode("latin-1"),
            "headers": _headers(scope),
            "body_bytes": 0,
            "status": None,
        }
        self.requests.append(record)
        fault = self.faults.take(method, path)
        if fault is not None and fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault is not None and fault.status is not None:
            record["body_bytes"] = await _drain(receive)
            record["status"] = fault.status
            error = {"message": "injected fault", "type": "server_error", "param": None}
            await _send_json(send, fault.status, {"error": error | {"code": None}})
            return

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return
                chunk = message.get("body", b"")
                record["body_bytes"] += len(chunk)
                if chunk:
                    yield chunk
                if not message.get("more_body"):
                    return

        outgoing = self._client.build_request(
            method,
            self._upstream + path,
            params=scope["query_string"].decode("latin-1"),
            headers=[
                (name, value)
                for name, value in scope["headers"]
                if name.decode("latin-1").lower() not in _HOP_BY_HOP
            ],
            # A GET's (empty) body is read first, so the request can be sent again (_send).
            content=b"".join([chunk async for chunk in body()]) if method == "GET" else body(),
        )
        try:
            response = await self._send(outgoing)
        except httpx.HTTPError as error:
            record["status"] = 502
            message = f"the fault proxy could not reach the upstream: {error!r}"
            await _send_json(send, 502, {"error": {"message": message, "type": "server_error"}})
            return
        record["status"] = response.status_code
        try:
            await self._relay(response, send, fault)
        finally:
            await response.aclose()

    async def _relay(self, response: httpx.Response, send: Send, fault: Fault | None) -> None:
        if self._latency:
            await asyncio.sleep(self._latency)
        headers = [
            (name, value)
            for name, value in response.headers.raw
            if name.decode("latin-1").lower() not in _HOP_BY_HOP
        ]
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        if fault is not None and fault.drop_connection:
            return  # the app ends without the body: the server closes the connection
        is_stream = response.headers.get("content-type", "").startswith("text/event-stream")
        chunks = _events(response) if is_stream else response.aiter_raw()
        sent = 0
        async for chunk in chunks:
            if is_stream and fault is not None:
                if (
                    fault.cut_stream_after_events is not None
                    and sent >= fault.cut_stream_after_events
                ):
                    return
                if (
                    fault.stall_stream_after_events is not None
                    and sent >= fault.stall_stream_after_events
                ):
                    await asyncio.sleep(3600)
                if fault.event_delay_ms and sent:
                    await asyncio.sleep(fault.event_delay_ms / 1000)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += 1
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send(self, outgoing: httpx.Request) -> httpx.Response:
        try:
            return await self._client.send(outgoing, stream=True)
        except httpx.HTTPError as error:
            # A kept-alive connection the engine closed as it was reused drops the request
            # before the engine reads it (seen under load in CI). A GET carries no body, so
            # it is sent once more, as HTTP clients do (Go's net/http, urllib3); the log
            # shows each such retry.
            if outgoing.method != "GET":
                raise
            print(f"fault proxy: GET {outgoing.url.path} sent again after {error!r}", flush=True)
            return await self._client.send(outgoing, stream=True)

    async def _control(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        route = (scope["method"], scope["path"].removeprefix(_CONTROL))
        if route == ("GET", "/healthz"):
            await _send_json(send, 200, {"status": "ok"})
        elif route == ("GET", "/requests"):
            await _send_json(send, 200, {"requests": list(self.requests)})
        elif route == ("DELETE", "/requests"):
            self.requests.clear()
            await _send_json(send, 200, {"cleared": True})
        elif route == ("POST", "/faults"):
            try:
                fault = parse_fault(json.loads(await _read(receive) or b"null"))
            except (ValueError, FaultError) as error:
                await _send_json(send, 400, {"error": {"message": str(error)}})
                return
            self.faults.add(fault)
            await _send_json(send, 200, fault.public())
        elif route == ("DELETE", "/faults"):
            self.faults.clear()
            await _send_json(send, 200, {"cleared": True})
        else:
            await _send_json(send, 404, {"error": {"message": f"no control route {route}"}})


async def _events(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body of an event stream as whole events (each with its blank-line end)."""
    pending = b""
    async for chunk in response.aiter_raw():
        pending += chunk
        while True:
            end = min(
                (i for i in (pending.find(b"\n\n"), pending.find(b"\r\n\r\n")) if i >= 0),
                default=-1,
            )
            if end < 0:
                break
            size = 4 if pending.startswith(b"\r\n\r\n", end) else 2
            yield pending[: end + size]
            pending = pending[end + size :]
    if pending:
        yield pending


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def _read(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if message["type"] != "http.request" or not message.get("more_body"):
            return body


async def _drain(receive: Receive) -> int:
    """Reads the request body before a faulted response, as a real server would, so the
    client sees the status rather than a connection reset mid-upload; its size."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            return size


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


async def _lifespan(receive: Receive, send: Send, client: httpx.AsyncClient) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await client.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
