"""The gateway's OpenAI-style error responses (bodies from prism/openai_errors.py), and the
app's error handlers.

Every error the gateway itself makes has OpenAI's shape, so the official SDK raises the
exception a caller expects for the status (NotFoundError, BadRequestError, ...).
Upstream errors are not built here: they pass through unchanged.
"""

import logging
from dataclasses import dataclass

from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from prism.openai_errors import (
    CONTROL_PLANE_UNAVAILABLE,
    INVALID_REQUEST,
    SERVER_ERROR,
    error_event,
    error_json,
    unknown_url_message,
)
from prism.serving import answer_unexpected_errors
from prism.v1 import authorizer_pb2

log = logging.getLogger("prism.dataplane")

# The 500 body's message: the request id lets an operator find the traceback in the log.
_FAILED = (
    "The gateway failed to handle the request. Please retry; if it persists, report the "
    "x-prism-request-id of this response."
)


@dataclass(eq=False)  # an exception compares and hashes by identity
class GatewayError(Exception):
    """Raised anywhere in the request path; answered with an OpenAI-style error response."""

    status: int
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    headers: dict[str, str] | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def response(self) -> Response:
        return Response(
            error_json(self.message, self.type, self.code, self.param),
            status=self.status,
            headers=self.headers,
            content_type="application/json",
        )

    def event(self) -> bytes:
        """The error as a stream's last event, once a 200 stream has begun."""
        return error_event(self.message, self.type, self.code)


def unknown_url(method: str, path: str) -> GatewayError:
    return GatewayError(404, unknown_url_message(method, path), INVALID_REQUEST, "unknown_url")


def body_too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        f"The request body is larger than this endpoint's limit of {limit} bytes.",
        INVALID_REQUEST,
        "request_too_large",
    )


def body_timeout() -> GatewayError:
    return GatewayError(
        408, "The request body did not arrive in time.", INVALID_REQUEST, "request_timeout"
    )


def malformed_json(reason: str, param: str | None = None) -> GatewayError:
    return GatewayError(
        400,
        f"We could not parse the JSON body of your request: {reason}",
        INVALID_REQUEST,
        "invalid_json",
        param,
    )


def _control_plane_unavailable(message: str) -> GatewayError:
    # 503 with retry-after makes the SDK raise InternalServerError and retry.
    return GatewayError(
        503, message, SERVER_ERROR, CONTROL_PLANE_UNAVAILABLE, headers={"retry-after": "1"}
    )


def control_plane_unavailable() -> GatewayError:
    # Retrying is safe: nothing was forwarded.
    return _control_plane_unavailable(
        "The gateway could not authorize the request because its control plane is "
        "unavailable. Please retry shortly."
    )


def not_recorded() -> GatewayError:
    # Retrying is safe: what the upstream made was undone.
    return _control_plane_unavailable(
        "The gateway could not record what this request created, because its control plane "
        "is unavailable, so it undid it upstream (deleted it, or cancelled a run). Please "
        "retry shortly."
    )


def stream_broken() -> GatewayError:
    return GatewayError(
        502,
        "The upstream API's stream broke off before it ended; the run may still be going: "
        "retrieve it to see how it ends.",
        SERVER_ERROR,
        "upstream_stream_broken",
    )


def stream_timeout(seconds: float) -> GatewayError:
    return GatewayError(
        504,
        f"The upstream API's stream sent nothing for {seconds:g} s; the run may still be "
        "going: retrieve it to see how it ends.",
        SERVER_ERROR,
        "upstream_timeout",
    )


def upstream_unreachable() -> GatewayError:
    return GatewayError(
        502,
        "The gateway could not reach the upstream API.",
        SERVER_ERROR,
        "upstream_unreachable",
    )


def upstream_timeout() -> GatewayError:
    return GatewayError(
        504,
        "The upstream API did not answer in time.",
        SERVER_ERROR,
        "upstream_timeout",
    )


def denial_response(denial: authorizer_pb2.Denial) -> Response:
    """The control plane's denial, as the error the client receives.

    A rate limit says when the request would pass: `retry-after-ms`, which the OpenAI SDK
    prefers, and `retry-after` in whole seconds (rounded up, so a client honouring it never
    comes back early) for every other client. `x-should-retry: false` tells the SDK not to
    retry at all (an exhausted budget); it obeys that before looking at the status.
    """
    # A denial is the client's to fix (4xx), or a 503 the gateway cannot take now (fail-open
    # refusing a request that would create objects); anything else is taken as a 403.
    known = 400 <= denial.http_status < 500 or denial.http_status == 503
    status = denial.http_status if known else 403
    headers = {}
    if denial.retry_after_ms > 0:
        headers["retry-after"] = str(-(-denial.retry_after_ms // 1000))
        headers["retry-after-ms"] = str(denial.retry_after_ms)
    if denial.do_not_retry:
        headers["x-should-retry"] = "false"
    return GatewayError(
        status,
        denial.message or "The request was denied.",
        denial.type or "permission_denied",
        denial.code or None,
        denial.param or None,
        headers,
    ).response()


def _gateway_error(error: GatewayError) -> Response:
    return error.response()


def _http_exception(error: HTTPException) -> Response:
    if error.code in (404, 405):
        # Wrong method on a known path is an unknown URL too, as it is on OpenAI's API.
        return unknown_url(request.method, request.path).response()
    description = error.description or "Bad request."
    return GatewayError(error.code or 400, description, INVALID_REQUEST).response()


def _request_id() -> str:
    return request.trace.request_id  # type: ignore[attr-defined]


def register_error_handlers(app: Quart) -> None:
    app.register_error_handler(GatewayError, _gateway_error)
    app.register_error_handler(HTTPException, _http_exception)
    answer_unexpected_errors(app, log, _FAILED, _request_id)
