"""OpenAI error bodies for the requests Hypercorn refuses itself.

Hypercorn answers a request it cannot parse as HTTP/1.1 (a malformed request line or
target, a raw non-ASCII path, no Host, broken framing: 400; headers over its limit: 431)
before any app sees it, with an empty body. `install()` gives those answers the gateway's
error shape, so a client reads them as it reads every other error of the gateway. They
reach no app, so they carry no x-prism-* headers and have no request log entry; HTTP/2
refuses such requests by resetting the stream, where no body can be sent.
"""

from itertools import chain

import h11
from hypercorn.protocol.h11 import H11Protocol

from prism.openai_errors import INVALID_REQUEST, error_json

_ERRORS = {
    400: (
        "The request is not valid HTTP/1.1 (its request line, path, Host header or framing); "
        "the gateway could not read it.",
        "malformed_request",
    ),
    431: (
        "The request's headers are larger than the gateway accepts.",
        "request_header_fields_too_large",
    ),
}


async def _send_error_response(self: H11Protocol, status_code: int) -> None:
    message, code = _ERRORS.get(
        status_code,
        (
            f"The gateway could not take the request as HTTP/1.1 ({status_code}).",
            "malformed_request",
        ),
    )
    body = error_json(message, INVALID_REQUEST, code).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"connection", b"close"),
    ]
    await self._send_h11_event(
        h11.Response(
            status_code=status_code,
            headers=list(chain(headers, self.config.response_headers("h11"))),
        )
    )
    await self._send_h11_event(h11.Data(data=body))
    await self._send_h11_event(h11.EndOfMessage())


def install() -> None:
    """In every server process, before it serves."""
    H11Protocol._send_error_response = _send_error_response  # type: ignore[method-assign]
