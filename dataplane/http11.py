"""One HTTP/1.1 connection to the upstream, one request at a time: the data plane's own client.

The gateway forwards every request over one of these (pool.py keeps them). It does only what
forwarding needs: send a request whose body is bytes or a stream (with its length, or
chunked), and read the answer's status and headers, then its body as it arrives, framed by
Content-Length, chunked encoding or the connection's end. Header names and values pass as
bytes, as received. What the gateway does per request is this module's work alone, so
nothing runs that a general-purpose client needs (cookie jars, redirects, URL models,
header classes) and each wait is one read of the event loop's buffered stream.

Every wait (connect, each write, each read) is bounded by the request's timeout:
UpstreamTimeout past it. Anything else that breaks the exchange (refused, reset, closed
early, an answer that is not HTTP/1.1) is UpstreamBroken.
"""

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import NamedTuple

# A response head (status line and headers) longer than this is refused.
_HEAD_LIMIT = 256 * 1024
_READ_SIZE = 64 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


class UpstreamError(Exception):
    pass


class UpstreamTimeout(UpstreamError):
    pass


class UpstreamBroken(UpstreamError):
    pass


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


@dataclass(frozen=True)
class Request:
    method: bytes
    # The request-target: the path and query (`/v1/threads/thread_abc?limit=1`).
    target: bytes
    headers: list[tuple[bytes, bytes]]
    content: bytes | AsyncIterable[bytes] | None


@dataclass(eq=False)
class Response:
    """The answer's status and headers; its body is read with `stream()` (or `read()`), and
    the response closed with `aclose()`, which gives the connection back when the body was
    read to its end."""

    status: int
    headers: list[tuple[bytes, bytes]]
    _body: AsyncIterator[bytes]
    # Told, once, whether the body was read to its end (the connection can be reused).
    _closed: Callable[[bool], None]
    _done: bool = field(default=False, init=False)
    _is_closed: bool = field(default=False, init=False)
    _on_close: Callable[[], Awaitable[None]] | None = field(default=None, init=False)

    def on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """`callback` runs once the response is closed (the pool takes its connection back)."""
        self._on_close = callback

    async def stream(self) -> AsyncIterator[bytes]:
        async for chunk in self._body:
            yield chunk
        self._done = True

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.stream()])

    async def aclose(self) -> None:
        if not self._is_closed:
            self._is_closed = True
            await self._body.aclose()  # type: ignore[attr-defined]
            self._closed(self._done)
            if self._on_close is not None:
                await self._on_close()


class Connection:
    def __init__(
        self, origin: Origin, ssl_context: ssl.SSLContext | None, keepalive_expiry: float
    ) -> None:
        self._origin = origin
        self._ssl_context = ssl_context if origin.scheme == "https" else None
        self._keepalive_expiry = keepalive_expiry
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._busy = False
        self._reusable = True
        self._idle_since = time.monotonic()

    def has_expired(self) -> bool:
        """Idle past its keep-alive, or closed by the upstream meanwhile (the event loop
        reads the connection's end as it comes, so no system call is needed to tell)."""
        if self._reader is None:
            return False
        if not self._reusable or self._reader.at_eof():
            return True
        assert self._writer is not None
        return (
            self._writer.is_closing()
            or time.monotonic() - self._idle_since > self._keepalive_expiry
        )

    def is_idle(self) -> bool:
        return not self._busy and self._reusable

    async def send(self, request: Request, timeout: float) -> Response:
        """Sends the request and reads the answer's head; the body follows on the Response."""
        self._busy = True
        with _Exchange(self):
            if self._writer is None:
                async with asyncio.timeout(timeout):
                    await self._connect()
            await self._write_request(request, timeout)
            async with asyncio.timeout(timeout):
                status, response_headers = await self._read_head()
        body = self._body(request.method, status, response_headers, timeout)
        return Response(status, response_headers, body, self._response_closed)

    async def aclose(self) -> None:
        self._reusable = False
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):  # closing anyway
                await self._writer.wait_closed()
            self._writer = None

    async def _connect(self) -> None:
        origin = self._origin
        self._reader, self._writer = await asyncio.open_connection(
            origin.host,
            origin.port,
            ssl=self._ssl_context,
            server_hostname=origin.host if self._ssl_context else None,
            limit=_HEAD_LIMIT,
        )

    async def _write_request(self, request: Request, timeout: float) -> None:
        assert self._writer is not None
        content = request.content
        head = [request.method, b" ", request.target, b" HTTP/1.1\r\n"]
        chunked = False
        for name, value in request.headers:
            head += (name, b": ", value, b"\r\n")
            chunked = chunked or (name.lower() == b"transfer-encoding" and value == b"chunked")
        head.append(b"\r\n")
        if isinstance(content, bytes):
            head.append(content)
        self._writer.write(b"".join(head))
        await _drain(self._writer, timeout)
        if content is None or isinstance(content, bytes):
            return
        async for part in content:
            if not part:
                continue
            # An upload's parts arrive as the client sends them; each write waits on its own.
            async with asyncio.timeout(timeout):
                if chunked:
                    self._writer.write(b"%x\r\n%b\r\n" % (len(part), part))
                else:
                    self._writer.write(part)
                await self._writer.drain()
        if chunked:
            self._writer.write(b"0\r\n\r\n")
            async with asyncio.timeout(timeout):
                await self._writer.drain()

    async def _read_head(self) -> tuple[int, list[tuple[bytes, bytes]]]:
        assert self._reader is not None
        while True:
            raw = await self._reader.readuntil(b"\r\n\r\n")
            lines = raw[:-4].split(b"\r\n")
            version, _, rest = lines[0].partition(b" ")
            code = rest[:3]
            if not (version.startswith(b"HTTP/1.") and code.isdigit()):
                raise UpstreamBroken(f"not an HTTP/1.1 answer: {lines[0][:60]!r}")
            status = int(code)
            headers = []
            for line in lines[1:]:
                name, colon, value = line.partition(b":")
                if not colon:
                    raise UpstreamBroken(f"a malformed header line: {line[:60]!r}")
                headers.append((name, value.strip()))
            if version == b"HTTP/1.0" or _has_token(headers, b"connection", b"close"):
                self._reusable = False
            # An interim answer (100 Continue) is followed by the real one.
            if not 100 <= status < 200:
                return status, headers

    async def _body(
        self, method: bytes, status: int, headers: list[tuple[bytes, bytes]], timeout: float
    ) -> AsyncIterator[bytes]:
        reader = self._reader
        assert reader is not None
        with _Exchange(self):
            if method == b"HEAD" or status in _NO_BODY_STATUSES:
                return
            if _has_token(headers, b"transfer-encoding", b"chunked"):
                async for chunk in _chunked(reader, timeout):
                    yield chunk
                return
            length = _content_length(headers)
            if length is None:
                # Framed by the connection's end: it cannot carry another request.
                self._reusable = False
                while chunk := await _read(reader, timeout):
                    yield chunk
                return
            while length:
                chunk = await _read(reader, timeout, min(length, _READ_SIZE))
                if not chunk:
                    raise UpstreamBroken("the upstream closed the connection mid-body")
                length -= len(chunk)
                yield chunk

    def _response_closed(self, read_to_the_end: bool) -> None:
        self._busy = False
        self._idle_since = time.monotonic()
        if not read_to_the_end:
            # Bytes of this answer may still come: the connection cannot carry another.
            self._reusable = False


class _Exchange:
    """What breaks an exchange on `connection`, as an UpstreamError; after anything that
    interrupts it, the connection cannot carry another request. (A class rather than a
    generator-based context manager: it is entered twice per request.)"""

    __slots__ = ("_connection",)

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if error is None:
            return False
        self._connection._reusable = False
        if isinstance(error, TimeoutError):
            raise UpstreamTimeout("the upstream did not answer in time") from None
        if isinstance(error, (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError)):
            raise UpstreamBroken(repr(error)) from None
        return False


async def _drain(writer: asyncio.StreamWriter, timeout: float) -> None:
    """Waits, for up to `timeout` s, until the upstream takes what was written; at once
    when the transport holds nothing (most requests: the write went out whole), where
    drain would not wait."""
    if writer.transport.get_write_buffer_size() == 0:
        await writer.drain()
        return
    async with asyncio.timeout(timeout):
        await writer.drain()


async def _read(reader: asyncio.StreamReader, timeout: float, size: int = _READ_SIZE) -> bytes:
    try:
        async with asyncio.timeout(timeout):
            return await reader.read(size)
    except TimeoutError:
        raise UpstreamTimeout(f"nothing more within {timeout} s") from None


async def _chunked(reader: asyncio.StreamReader, timeout: float) -> AsyncIterator[bytes]:
    while True:
        try:
            async with asyncio.timeout(timeout):
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip() or b"x", 16)
                if size == 0:
                    # Trailers, if any, up to the empty line.
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass
                    return
                chunk = await reader.readexactly(size + 2)
        except TimeoutError:
            raise UpstreamTimeout(f"nothing more within {timeout} s") from None
        except ValueError:
            raise UpstreamBroken("a malformed chunk size") from None
        yield chunk[:-2]


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            if not value.isdigit():
                raise UpstreamBroken(f"a malformed Content-Length: {value[:20]!r}")
            return int(value)
    return None


def _has_token(headers: list[tuple[bytes, bytes]], name: bytes, token: bytes) -> bool:
    return any(
        key.lower() == name and token in value.lower().replace(b" ", b"").split(b",")
        for key, value in headers
    )
