"""The app factory: the API blueprints behind OpenAI's credential checks, every error as
OpenAI's error body, and the wire middleware (recording, faults, latency) around it all."""

import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path

from quart import Quart, current_app, request
from werkzeug.exceptions import HTTPException

from . import assistants, files, runs, threads, vector_stores
from .errors import ApiError, error_body
from .faults import WIRE_EXTENSION, Wire, control
from .store import Store
from .web import STORE_EXTENSION

# Uploads up to OpenAI's 512 MB file limit plus the multipart framing around them.
MAX_UPLOAD_BYTES = 600 * 1024 * 1024
# Seconds; generous because a 512 MB upload or download through the gateway takes a while.
TIMEOUT_SECONDS = 600
_BETA_ROUTES = ("/v1/assistants", "/v1/threads")
_BETA_HEADER = "assistants=v2"


def create_app(api_key: str, data_dir: Path, latency_ms: int = 0) -> Quart:
    app = Quart(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES,
        BODY_TIMEOUT=TIMEOUT_SECONDS,
        RESPONSE_TIMEOUT=TIMEOUT_SECONDS,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep OpenAI's field order
    data_dir.mkdir(parents=True, exist_ok=True)
    app.extensions[STORE_EXTENSION] = Store(data_dir)
    for blueprint in (
        assistants.bp,
        threads.bp,
        runs.bp,
        files.bp,
        vector_stores.bp,
        control,
    ):
        app.register_blueprint(blueprint)
    app.before_request(_credentials_check(api_key))
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    wire = Wire(app.asgi_app, latency_ms)
    app.extensions[WIRE_EXTENSION] = wire
    app.asgi_app = wire  # type: ignore[method-assign]
    return app


def _credentials_check(api_key: str) -> Callable[[], Awaitable[None]]:
    expected = f"Bearer {api_key}".encode()

    async def check() -> None:
        if not (request.path == "/v1" or request.path.startswith("/v1/")):
            return
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), expected):
            raise ApiError(401, _bad_key_message(given), code="invalid_api_key")
        if request.path.startswith(_BETA_ROUTES) and (
            request.headers.get("OpenAI-Beta") != _BETA_HEADER
        ):
            raise ApiError(
                400,
                "You must provide the 'OpenAI-Beta' header to access the Assistants API. "
                "Please try again by setting the header 'OpenAI-Beta: assistants=v2'.",
                code="invalid_beta",
            )

    return check


def _bad_key_message(authorization: str) -> str:
    scheme, _, key = authorization.partition(" ")
    if scheme != "Bearer" or not key:
        return (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    # Masked like OpenAI's: enough to recognise a key, never enough to use it.
    masked = f"{key[:3]}****{key[-4:]}" if len(key) > 12 else "****"
    return (
        f"Incorrect API key provided: {masked}. "
        "You can find your API key at https://platform.openai.com/account/api-keys."
    )


async def _api_error(error: ApiError) -> tuple[dict, int]:
    return error.body, error.status


async def _http_error(error: HTTPException) -> tuple[dict, int]:
    status = error.code or 500
    if status in (404, 405):
        # Unknown routes, worded as OpenAI words them.
        message = f"Invalid URL ({request.method} {request.path})"
    else:
        message = error.description or error.name
    return error_body(message), status


async def _unexpected_error(error: Exception) -> tuple[dict, int]:
    # A bug in the fake: logged with its traceback here, never sent to the client.
    current_app.logger.exception("unhandled error in the fake upstream", exc_info=error)
    body = error_body(
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
    )
    return body, 500
