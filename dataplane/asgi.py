"""Quart's ASGI request handling, adapted for a proxy that streams bodies both ways.

Stock Quart has three behaviours a gateway cannot live with:

1. Its receive loop appends every chunk of the request body to `request.body` without ever
   waiting, and `Body`'s size check counts only the unconsumed buffer. Streaming an upload
   through it has no backpressure (memory grows whenever the upstream reads slower than the
   client sends) and no limit on the total size of a chunked body. `BoundedBody` holds at most
   `BUFFER_LIMIT` bytes and makes the receive loop wait for space; Hypercorn's per-request queue
   is bounded too, so a waiting loop stops the socket from being read. It also counts every
   byte received against the body's limit.
2. A response can go out before the body was read (a denial, a 413). Hypercorn, finishing the
   response, queues a disconnect for the app; were the receive loop still waiting for space,
   that queue would stay full and the response would never finish. So once a response starts,
   the rest of the body is discarded as it arrives. And the response is finished only once the
   client has sent all of its body (for up to LINGER_SECONDS): Hypercorn closes the connection
   as soon as a response is finished, and closing a socket with unread data resets it, so a
   client still uploading (as the SDK does until its body is sent) would see a connection
   error instead of the 413 or 401.
3. A response body that fails midway would still be terminated cleanly, so a truncated
   upstream stream would look complete to the client. A body iterator raises `AbortResponse`
   to leave the response unfinished: the server then closes the connection and the client
   sees an incomplete response.

And Quart has no hook for the end of a response: `after_request` runs before the body is
sent, and nothing runs when the client leaves. `ProxyRequest.on_response_over` is called once
the response is over, however it ended, so the control plane learns when a request's
concurrency slot is free; then the request log gets the request's one entry
(request_log.py). What the client is sent (status, content type, body bytes) is shown to the
request's `LogFacts` as it is sent, so streams, downloads and the gateway's own errors
are logged alike.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Generator
from typing import TYPE_CHECKING, Any

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent
from quart import Response
from quart.asgi import ASGIHTTPConnection
from quart.typing import ResponseTypes
from quart.utils import encode_headers
from quart.wrappers.request import Body, Request
from quart.wrappers.response import DataBody

from .errors import body_timeout, body_too_large
from .headers import Trace
from .request_log import LogFacts, RequestLog

if TYPE_CHECKING:
    from .dispatch import ProxyDispatch

# The most of a request body the gateway holds while the handler consumes it in a stream.
BUFFER_LIMIT = 256 * 1024
# How long a response sent early waits for the client to finish sending its body.
LINGER_SECONDS = 30.0


class BoundedBody(Body):
    """A request body with a bounded buffer and a limit on the total bytes received.

    Read in a stream (`async for`), at most BUFFER_LIMIT bytes wait in memory; read whole
    (`await`), it holds up to its limit, which callers lower with `limit` first.
    """

    def __init__(self, expected_content_length: int | None, max_content_length: int | None) -> None:
        # Body.__init__ is not called: every method that touches its state is replaced here.
        self._data = bytearray()
        self._complete = asyncio.Event()
        self._has_data = asyncio.Event()
        self._has_space = asyncio.Event()
        self._has_space.set()
        self._expected = expected_content_length
        self._max_content_length = max_content_length
        self._buffer_limit = BUFFER_LIMIT
        self._received = 0
        self._error: Exception | None = None
        self._discarding = False
        # The client sends nothing more: it sent the end of the body, or left.
        self._client_done = asyncio.Event()

    def received_all(self) -> None:
        self._client_done.set()
        self.set_complete()

    @property
    def received(self) -> int:
        """Bytes of the body received so far."""
        return self._received

    def client_left(self) -> None:
        # Not complete: a reader must not take what arrived for the whole body.
        self._client_done.set()

    @property
    def client_done(self) -> bool:
        """The client sends nothing more: it sent the end of the body, or left."""
        return self._client_done.is_set()

    async def wait_for_client(self, timeout: float) -> None:
        """Until the client sends nothing more, or `timeout` seconds."""
        if self._client_done.is_set():  # most requests: the whole body came before the answer
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._client_done.wait()

    def limit(self, max_content_length: int) -> None:
        """Lowers the total size accepted, before the body is read."""
        self._max_content_length = max_content_length
        if self._received > max_content_length:
            self._fail_too_large()

    def discard(self) -> None:
        """Nobody will read the rest: drop what arrives instead of waiting for space."""
        self._discarding = True
        self._data.clear()
        self._has_space.set()

    async def read(self, timeout: float | None) -> bytes:
        """The whole body; 408 when it has not all arrived within `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                return await self
        except TimeoutError:
            raise body_timeout() from None

    async def chunks(self, idle_timeout: float | None) -> AsyncIterator[bytes]:
        """The body as it arrives; 408 when the client sends nothing for `idle_timeout` s."""
        while True:
            try:
                async with asyncio.timeout(idle_timeout):
                    chunk = await self.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise body_timeout() from None
            yield chunk

    async def wait_for_space(self) -> None:
        await self._has_space.wait()

    def append(self, data: bytes) -> None:
        if not data or self._discarding or self._error is not None:
            return
        self._received += len(data)
        if self._max_content_length is not None and self._received > self._max_content_length:
            self._fail_too_large()
            return
        self._data.extend(data)
        self._has_data.set()
        if len(self._data) >= self._buffer_limit:
            self._has_space.clear()

    def _fail_too_large(self) -> None:
        self._error = body_too_large(self._max_content_length or 0)
        self._data.clear()
        self._has_space.set()
        self.set_complete()

    def _raise_if_failed(self) -> None:
        if (
            self._expected is not None
            and self._max_content_length is not None
            and self._expected > self._max_content_length
        ):
            raise body_too_large(self._max_content_length)
        if self._error is not None:
            raise self._error

    async def __anext__(self) -> bytes:
        self._raise_if_failed()
        if not self._complete.is_set():
            await self._has_data.wait()
        self._raise_if_failed()
        if self._complete.is_set() and not self._data:
            raise StopAsyncIteration
        data = bytes(self._data)
        self._data.clear()
        self._has_data.clear()
        self._has_space.set()
        return data

    def __await__(self) -> Generator[Any, None, bytes]:
        self._raise_if_failed()
        # Read whole, the body is held whole anyway: stop bounding the buffer below the limit.
        self._buffer_limit = self._max_content_length or BUFFER_LIMIT
        self._has_space.set()
        yield from self._complete.wait().__await__()
        self._raise_if_failed()
        return bytes(self._data)


class ProxyRequest(Request):
    body_class = BoundedBody
    body: BoundedBody

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trace = Trace()
        self.log_facts = LogFacts()
        # Called once the response is over: sent whole, ended early, or the client gone.
        self.on_response_over: Callable[[], None] | None = None


class AbortResponse(Exception):
    """Raised by a response body iterator to end the response unfinished (see module doc)."""


# Where create_app puts the app's RequestLog and ProxyDispatch, for the connection to find.
REQUEST_LOG = "prism.request_log"
PROXY_DISPATCH = "prism.proxy_dispatch"


class ProxyHTTPConnection(ASGIHTTPConnection):
    def _create_request_from_scope(self, send: ASGISendCallable) -> Request:
        self._request: ProxyRequest = super()._create_request_from_scope(send)  # type: ignore[assignment]
        return self._request

    async def handle_request(self, request: Request, send: ASGISendCallable) -> None:
        # Cancelled when the client disconnects, before or during the response: the `finally`
        # runs either way.
        try:
            dispatch: ProxyDispatch = self.app.extensions[PROXY_DISPATCH]
            matched = dispatch.match(self._request)
            if matched is None:
                await super().handle_request(request, send)
            else:
                await self._send_in_time(send, await dispatch.respond(self._request, *matched))
        finally:
            if self._request.on_response_over is not None:
                self._request.on_response_over()
            request_log: RequestLog = self.app.extensions[REQUEST_LOG]
            request_log.over(self._request, self._request.log_facts, self._request.trace)

    async def _send_in_time(self, send: ASGISendCallable, response: Response) -> None:
        """Sends the response within its timeout (the app's RESPONSE_TIMEOUT unless the
        response sets its own), as Quart's handle_request does."""
        timeout = response.timeout
        if timeout is Ellipsis:
            timeout = self.app.config["RESPONSE_TIMEOUT"]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._send_response(send, response)

    async def handle_messages(self, request: Request, receive: ASGIReceiveCallable) -> None:
        body: BoundedBody = request.body  # type: ignore[assignment]
        while True:
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                if chunk:
                    await body.wait_for_space()
                    body.append(chunk)
                if not message.get("more_body", False):
                    body.received_all()
            elif message["type"] == "http.disconnect":
                body.client_left()
                return

    async def _send_response(self, send: ASGISendCallable, response: ResponseTypes) -> None:
        # Whatever of the body is still coming will never be read (see module doc, 2).
        body = self._request.body
        body.discard()
        facts = self._request.log_facts

        async def send_last_after_the_body(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.start":
                facts.response_started(message["status"], message["headers"])
            elif message["type"] == "http.response.body":
                facts.response_chunk(message.get("body", b""))
                if not message.get("more_body", False):
                    await body.wait_for_client(LINGER_SECONDS)
            await send(message)

        whole = response.response
        # A client still sending its body (an answer before it was read: a 413, a denial)
        # must see the answer's body while the response waits for the rest (module doc, 2),
        # as Quart sends it: the body, then an empty last message.
        if not isinstance(whole, DataBody) or not body.client_done:
            with contextlib.suppress(AbortResponse):
                await super()._send_response(send_last_after_the_body, response)
            return
        # A body held whole goes in one message that also ends the response, where Quart
        # sends it and then an empty last one: the same bytes, for one pass less through the
        # server's send path.
        await send_last_after_the_body(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": encode_headers(response.headers),
            }
        )
        await send_last_after_the_body(
            {
                "type": "http.response.body",
                "body": whole.data[whole.begin : whole.end],
                "more_body": False,
            }
        )
