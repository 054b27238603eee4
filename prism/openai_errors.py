"""THE one builder of OpenAI-style error bodies, shared by the data plane and the engine.

OpenAI's shape is `{"error": {"message", "type", "param", "code"}}`; with it the official SDK
raises the exception a caller expects for the status (NotFoundError, BadRequestError, ...).
The HTTP layers wrap this body in their own response objects; nothing here knows HTTP.
"""

import json
from typing import Any

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"
# The 503 of a request the gateway could not decide or record, which a client may retry.
CONTROL_PLANE_UNAVAILABLE = "control_plane_unavailable"


def error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_json(message: str, type_: str, code: str | None = None, param: str | None = None) -> str:
    return json.dumps(error_body(message, type_, code, param))


def error_event(message: str, type_: str, code: str | None = None) -> bytes:
    """A server-sent event ending a stream with an error, as OpenAI's streams did: the SDK
    raises it as an APIError."""
    return f"event: error\ndata: {error_json(message, type_, code)}\n\n".encode()


def unknown_url_message(method: str, path: str) -> str:
    """OpenAI's wording for a route it does not serve (404, code `unknown_url`)."""
    return f"Invalid URL ({method} {path})"
