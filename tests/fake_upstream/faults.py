"""What happens on the wire around every /v1 request, below the API itself: the request
is recorded as it arrives, injected faults and the fixed latency are applied, and
OpenAI's response headers are added. The /_fake control endpoints steer it.

It is ASGI middleware so that it sees every request, routed or not, counts body bytes
as they stream in, and can cut a response off mid-stream.
"""

import asyncio
import json
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from quart import Blueprint, current_app

from .errors import error_body
from .store import JSON
from .web import json_body

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

WIRE_EXTENSION = "fake_upstream.wire"
# Enough for any test or benchmark run; bounded so a long benchmark cannot grow it forever.
_MAX_RECORDED = 100_000

control = Blueprint("fake_control", __name__, url_prefix="/_fake")


@dataclass
class Fault:
    path: str
    method: str | None = None
    status: int | None = None
    delay_ms: int = 0
    cut_stream_after_events: int | None = None
    # The stream goes silent after that many events, the connection kept open.
    stall_stream_after_events: int | None = None
    times: int = 1
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # `{name}` segments of a route template match any one path segment.
        template = re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(self.path))
        self._pattern = re.compile(template)

    def matches(self, method: str, path: str) -> bool:
        same_method = self.method is None or self.method.upper() == method
        return same_method and self._pattern.fullmatch(path) is not None

    def public(self) -> JSON:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


class Wire:
    def __init__(self, app: ASGIApp, latency_ms: int) -> None:
        self._app = app
        self._latency = latency_ms / 1000
        self.requests: deque[JSON] = deque(maxlen=_MAX_RECORDED)
        self.faults: list[Fault] = []

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/v1" or path.startswith("/v1/")):
            await self._app(scope, receive, send)
            return
        arrived = time.monotonic()
        record = {
            "method": scope["method"],
            "path": path,
            "query": scope["query_string"].decode("latin-1"),
            "headers": _headers(scope),
            "body_bytes": 0,
        }
        self.requests.append(record)

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                record["body_bytes"] += len(message.get("body", b""))
            return message

        fault = self._take_fault(scope["method"], path)
        if fault is not None and fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        send = self._openai_send(send, arrived, fault)
        if fault is not None and fault.status is not None:
            await _drain(counting_receive)
            await _send_json(send, fault.status, error_body("injected fault", "server_error"))
            return
        await self._app(scope, counting_receive, send)

    def _openai_send(self, send: Send, arrived: float, fault: Fault | None) -> Send:
        """Delays the response's headers by the fixed latency, adds OpenAI's headers and,
        for a stream the fault says to cut, drops everything after the first N events,
        including the end of the body, so the connection closes mid-response; for one it
        says to stall, sends nothing more after them, for an hour."""
        request_id = "req_" + secrets.token_hex(16)
        cut_after: int | None = None
        stall_after: int | None = None
        forwarded = 0

        async def wire_send(message: Message) -> None:
            nonlocal cut_after, stall_after, forwarded
            if message["type"] == "http.response.start":
                if self._latency:
                    await asyncio.sleep(self._latency)
                elapsed_ms = int((time.monotonic() - arrived) * 1000)
                headers = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                    (b"openai-processing-ms", str(elapsed_ms).encode()),
                ]
                message = {**message, "headers": headers}
                if fault is not None and _is_event_stream(headers):
                    cut_after = fault.cut_stream_after_events
                    stall_after = fault.stall_stream_after_events
            elif message["type"] == "http.response.body":
                if cut_after is not None and forwarded >= cut_after:
                    return
                if stall_after is not None and forwarded >= stall_after:
                    await asyncio.sleep(3600)
                if message.get("body"):
                    forwarded += 1
            await send(message)

        return wire_send


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _is_event_stream(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(
        name.lower() == b"content-type" and value.startswith(b"text/event-stream")
        for name, value in headers
    )


async def _drain(receive: Receive) -> None:
    """Reads the request body before a faulted response, as a real server would, so
    the client sees the status rather than a connection reset mid-upload."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


async def _send_json(send: Send, status: int, body: JSON) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


def wire() -> Wire:
    return current_app.extensions[WIRE_EXTENSION]


@control.get("/healthz")
async def healthz() -> JSON:
    return {"status": "ok"}


@control.get("/requests")
async def recorded_requests() -> JSON:
    return {"requests": list(wire().requests)}


@control.delete("/requests")
async def clear_requests() -> JSON:
    wire().requests.clear()
    return {"cleared": True}


@control.post("/faults")
async def add_fault() -> JSON:
    body = await json_body(
        (
            "method",
            "path",
            "status",
            "delay_ms",
            "cut_stream_after_events",
            "stall_stream_after_events",
            "times",
        )
    )
    fault = Fault(
        path=body.required_string("path"),
        method=body.string("method"),
        status=body.integer("status", minimum=100, maximum=599),
        delay_ms=body.integer("delay_ms", minimum=0) or 0,
        cut_stream_after_events=body.integer("cut_stream_after_events", minimum=0),
        stall_stream_after_events=body.integer("stall_stream_after_events", minimum=0),
        times=body.integer("times", minimum=1) or 1,
    )
    wire().faults.append(fault)
    return fault.public()


@control.delete("/faults")
async def clear_faults() -> JSON:
    wire().faults.clear()
    return {"cleared": True}
