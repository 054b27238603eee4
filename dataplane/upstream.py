"""Forwarding an allowed request to the upstream API and relaying its answer.

The forwarded request keeps the client's path, query and end-to-end headers, but never the
client's credentials: the upstream key from Check replaces `Authorization`, and OpenAI account
headers are dropped. It goes out on a pooled HTTP/1.1 connection of the data plane's own
client (http11.py, pool.py).

The answer passes through unchanged, errors included (but for the upstream's rate-limit
headers: headers.py). A JSON answer of known, small length is read whole, and so is one of
unannounced length on the routes whose answers the gateway reads for the control plane (up
to the JSON limit); anything else (server-sent events, file downloads) is relayed chunk by
chunk as it arrives, and the upstream response is closed as soon as the client goes away.
Each answer is shown to the request's Record as it goes (records.py): whole, or chunk by chunk
before each is relayed; the routes it reads are asked for uncompressed answers. A run's event
stream, read to its end, gets the SSE comment lines of its cost after the upstream's last
chunk (headers.stream_trailer). An event stream that breaks off (the connection cut, nothing
for PRISM_UPSTREAM_TIMEOUT, a Record the gateway could not make) ends with an `error` event
carrying an OpenAI error, so the client knows it is incomplete; a download that breaks off
is left unfinished, which the client sees as a truncated response.
"""

import functools
import logging
from collections.abc import AsyncIterable, AsyncIterator
from time import perf_counter
from urllib.parse import quote, urlencode, urlsplit

from quart import Response

from prism.v1 import authorizer_pb2

from .asgi import AbortResponse, ProxyRequest
from .errors import (
    GatewayError,
    stream_broken,
    stream_timeout,
    upstream_timeout,
    upstream_unreachable,
)
from .headers import HOP_BY_HOP, Trace, end_to_end, relayed_response_headers, stream_trailer
from .http11 import Origin, Request, UpstreamError, UpstreamTimeout
from .http11 import Response as UpstreamResponse
from .pool import ConnectionPool
from .records import ResponseRecord
from .routes import JSON_BODY_LIMIT

log = logging.getLogger("prism.dataplane")

# The client's credentials and account selectors are for the gateway, never the upstream; the
# framing headers are set anew for the forwarded body.
_NOT_FORWARDED = HOP_BY_HOP | {
    b"host",
    b"authorization",
    b"openai-organization",
    b"openai-project",
    b"content-length",
    # The caller's request-log headers are for the gateway's log (request_log.py).
    b"x-prism-trace-id",
    b"x-prism-metadata",
}
# For a response the gateway reads: the upstream answers uncompressed.
_NOT_FORWARDED_UNCOMPRESSED = _NOT_FORWARDED | {b"accept-encoding"}
_ASSISTANTS_V2 = (b"openai-beta", b"assistants=v2")
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
# Idle connections kept per upstream, and for how long: less than the 5 s after which
# Hypercorn and uvicorn servers (the engine among them) close an idle connection, so the
# pool never reuses one at the instant its server closes it.
_MAX_IDLE_CONNECTIONS = 100
_KEEPALIVE_SECONDS = 4.0


class Upstream:
    def __init__(self, timeout: float) -> None:
        # `timeout` bounds each wait on the upstream (connect, write, each read, a stream's
        # wait for its next event included).
        self._seconds = timeout
        self._pool: ConnectionPool | None = None

    async def open(self) -> None:
        self._pool = ConnectionPool(_MAX_IDLE_CONNECTIONS, _KEEPALIVE_SECONDS)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def forward(
        self,
        client_request: ProxyRequest,
        target: authorizer_pb2.Upstream,
        content: bytes | AsyncIterable[bytes] | None,
        record: ResponseRecord,
    ) -> Response:
        """Sends the request upstream and returns the response to relay to the client,
        showing `record` what the response holds as it goes (records.py)."""
        assert self._pool is not None, "Upstream.open() runs before serving"
        origin, request_target = _target(
            target.base_url, api_path(client_request), client_request.query_string
        )
        # The gateway reads these responses, so it asks for them uncompressed.
        headers = _forwarded_headers(
            client_request, target, content, uncompressed=record.reads_responses
        )
        trace = client_request.trace
        started = perf_counter()
        try:
            response = await self._pool.send(
                origin,
                Request(client_request.method.encode(), request_target, headers, content),
                self._seconds,
            )
        except UpstreamError as error:
            raise _failure(error, trace.request_id) from None
        finally:
            trace.upstream_seconds = perf_counter() - started

        encoding = _header(response, b"content-encoding")
        chunks = response.stream()
        if _read_whole(response, record.reads_responses):
            try:
                body = await _read_at_most(chunks, JSON_BODY_LIMIT)
            except UpstreamError as error:
                await response.aclose()
                raise _failure(error, trace.request_id) from None
            finally:
                trace.upstream_seconds = perf_counter() - started
            if len(body) <= JSON_BODY_LIMIT:
                await response.aclose()
                await record.whole_body(response.status, encoding, body)
                return Response(
                    body,
                    status=response.status,
                    headers=relayed_response_headers(response.headers, streamed=False),
                )
            # Longer than any JSON the gateway holds (its length was not announced): the
            # rest is relayed as it arrives, unread.
            chunks = _prefixed(body, chunks)

        is_event_stream = _header(response, b"content-type").startswith(b"text/event-stream")
        reading = is_event_stream and record.start_stream(response.status, encoding)
        relayed = Response(
            _relay(response, chunks, trace, record, reading, is_event_stream, self._seconds),
            status=response.status,
            headers=relayed_response_headers(response.headers, streamed=True),
        )
        # Quart's response timeout would cut long streams and downloads.
        relayed.timeout = None
        return relayed

    async def call(
        self,
        client_request: ProxyRequest,
        target: authorizer_pb2.Upstream,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """A request of the gateway's own on the client's behalf, without a body, read
        whole: a page of a listing it walks (listing.py), a thread it reads, an object it
        undoes (records.py). `path` is under the API root (`/threads/thread_abc`). Sent with
        the client's headers as any forwarded request is, but uncompressed, since the
        gateway reads the body."""
        assert self._pool is not None, "Upstream.open() runs before serving"
        origin, request_target = _target(
            target.base_url, path, urlencode(query).encode() if query else b""
        )
        headers = _forwarded_headers(client_request, target, None, uncompressed=True, method=method)
        trace = client_request.trace
        started = perf_counter()
        try:
            response = await self._pool.send(
                origin, Request(method.encode(), request_target, headers, None), self._seconds
            )
            try:
                body = await response.read()
            finally:
                await response.aclose()
        except UpstreamError as error:
            raise _failure(error, trace.request_id) from None
        finally:
            # A walk sends several requests: the client's wait is all of them.
            trace.upstream_seconds += perf_counter() - started
        return response.status, response.headers, body


def api_path(client_request: ProxyRequest) -> str:
    """The client's path under the API root, as routed and authorized (decoded), re-encoded:
    `%2F` in an id cannot reach another operation upstream than the one Check allowed."""
    return quote(client_request.path[len("/v1") :])


def _target(base_url: str, path: str, query: bytes) -> tuple[Origin, bytes]:
    """Where the request goes, and its request-target (the query as given)."""
    origin, root = _split(base_url)
    target = (root + path).encode()
    return origin, target + b"?" + query if query else target


@functools.cache
def _split(base_url: str) -> tuple[Origin, str]:
    """The base URL's origin and its path (the API root, `/v1`)."""
    parts = urlsplit(base_url)
    default_port = 443 if parts.scheme == "https" else 80
    origin = Origin(parts.scheme, parts.hostname or "", parts.port or default_port)
    return origin, parts.path.rstrip("/")


@functools.cache
def _host(base_url: str) -> bytes:
    return urlsplit(base_url).netloc.encode()


def _forwarded_headers(
    client_request: ProxyRequest,
    target: authorizer_pb2.Upstream,
    content: bytes | AsyncIterable[bytes] | None,
    uncompressed: bool,
    method: str | None = None,
) -> list[tuple[bytes, bytes]]:
    headers = end_to_end(
        client_request.scope["headers"],
        _NOT_FORWARDED_UNCOMPRESSED if uncompressed else _NOT_FORWARDED,
    )
    headers.append((b"host", _host(target.base_url)))
    # Assistants v2 is the API Prism serves; OpenAI rejects these routes without the header.
    if not any(name == b"openai-beta" for name, _ in headers):
        headers.append(_ASSISTANTS_V2)
    headers.append((b"authorization", b"Bearer " + target.api_key.encode()))
    if isinstance(content, bytes):
        headers.append((b"content-length", b"%d" % len(content)))
    elif content is not None:
        # A streamed upload keeps the client's length when it gave one, so the upstream sees
        # an ordinary upload rather than a chunked one.
        length = client_request.content_length
        if length is None:
            headers.append((b"transfer-encoding", b"chunked"))
        else:
            headers.append((b"content-length", b"%d" % length))
    elif (method or client_request.method) in _METHODS_WITH_BODY:
        headers.append((b"content-length", b"0"))
    return headers


def _failure(error: Exception, request_id: str) -> GatewayError:
    """The gateway's answer when the upstream could not be reached or did not answer."""
    log.warning("upstream failed for %s: %s", request_id, type(error).__name__)
    if isinstance(error, UpstreamTimeout):
        return upstream_timeout()
    return upstream_unreachable()


def _header(response: UpstreamResponse, name: bytes) -> bytes:
    for key, value in response.headers:
        if key.lower() == name:
            return value
    return b""


def _read_whole(response: UpstreamResponse, reads_responses: bool) -> bool:
    """Whether the response is JSON the gateway holds whole: of a length it announced within
    the limit, or of no announced length when the gateway must read it."""
    if not _header(response, b"content-type").startswith(b"application/json"):
        return False
    length = _header(response, b"content-length")
    if length:
        return length.isdigit() and int(length) <= JSON_BODY_LIMIT
    return reads_responses


async def _read_at_most(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The body, or its first chunks once they are over `limit` bytes."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            break
    return bytes(body)


async def _prefixed(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


async def _relay(
    response: UpstreamResponse,
    chunks: AsyncIterator[bytes],
    trace: Trace,
    record: ResponseRecord,
    reading: bool,
    is_event_stream: bool,
    timeout_seconds: float,
) -> AsyncIterator[bytes]:
    # Quart closes this generator when the client disconnects (the task is cancelled), so the
    # `finally` closes the upstream response and its connection.
    length = _header(response, b"content-length")
    announced = int(length) if length.isdigit() else None
    relayed = 0
    try:
        async for chunk in chunks:
            if reading:
                await record.stream_chunk(chunk)
            relayed += len(chunk)
            if relayed == announced:
                # With this chunk the client has the whole response.
                await record.end()
            yield chunk
        # Every byte is out; the response ends once this generator does.
        await record.end()
        if reading:
            # The runs' charges came with the Record of the stream's end, just sent.
            yield stream_trailer(trace)
    except UpstreamError as error:
        log.warning(
            "upstream response broke off for %s: %s", trace.request_id, type(error).__name__
        )
        if not is_event_stream:
            raise AbortResponse from None
        broken = (
            stream_timeout(timeout_seconds)
            if isinstance(error, UpstreamTimeout)
            else stream_broken()
        )
        trace.stream_error = broken
        yield broken.event()
    except GatewayError as error:
        # A Record the stream's next chunk waited for could not be made.
        trace.stream_error = error
        yield error.event()
    finally:
        await response.aclose()
