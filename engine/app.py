"""The engine's Quart application: `create_app(settings)` wires the parts together, and
`worker_app()` is what the server process loads (see __main__.py)."""

import json
import logging
import secrets
import time

from quart import Quart, Response, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from prism.redis_client import async_client
from prism.serving import answer_unexpected_errors
from prism.settings import load_or_exit

from .api import BLUEPRINTS, files, runs, vector_stores
from .api.fields import STORE
from .auth import check_bearer
from .config import Settings, load_settings
from .errors import ApiError, body_too_large, unknown_url
from .models.chat import ChatClient
from .runs.events import RunEvents
from .runs.queue import RunQueue
from .runs.worker import RunWorkers
from .store import Store
from .vector_stores import VectorStores

log = logging.getLogger("prism.engine")

# The 500 body's message.
_FAILED = (
    "The engine failed to handle the request. Please retry; if it persists, see the engine's log."
)


def create_app(settings: Settings) -> Quart:
    app = Quart("engine", static_folder=None)
    # The largest body any route takes (an upload); JSON routes lower it per request.
    app.config["MAX_CONTENT_LENGTH"] = files.UPLOAD_BODY_LIMIT
    # `//` in a path is an unknown URL, not a redirect.
    app.url_map.merge_slashes = False
    redis = async_client(settings.redis_url, decode_responses=True)
    store = Store(redis, settings.data_dir)
    queue = RunQueue(redis, settings.run_lease_seconds)
    app.extensions[STORE] = store
    app.extensions[runs.QUEUE] = queue
    chat = ChatClient(settings.models)
    events = RunEvents(redis, store)
    app.extensions[runs.EVENTS] = events
    indexes = VectorStores(redis, store, settings.embeddings)
    app.extensions[vector_stores.VECTOR_STORES] = indexes
    workers = RunWorkers(store, queue, chat, events, indexes, settings.run_workers)

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)

    @app.before_request
    async def authenticate() -> None:
        g.arrived = time.monotonic()
        denied = check_bearer(request.headers.get("Authorization"), settings.api_key)
        if denied is not None:
            raise denied

    @app.after_request
    async def identify(response: Response) -> Response:
        # As OpenAI's API: the SDK reads `x-request-id` into `_request_id`.
        response.headers["x-request-id"] = "req_" + secrets.token_hex(16)
        elapsed_ms = (time.monotonic() - g.get("arrived", time.monotonic())) * 1000
        response.headers["openai-processing-ms"] = str(int(elapsed_ms))
        return response

    register_error_handlers(app)

    @app.before_serving
    async def start_workers() -> None:
        workers.start()

    @app.after_serving
    async def close() -> None:
        await workers.stop()
        await indexes.close()
        await chat.aclose()
        await redis.aclose()

    return app


def _response(status: int, body: str) -> Response:
    return Response(body, status=status, content_type="application/json")


def _api_error(error: ApiError) -> Response:
    return _response(error.status, json.dumps(error.body))


def _http_exception(error: HTTPException) -> Response:
    if error.code in (404, 405):
        # A wrong method on a known path is an unknown URL too, as on OpenAI's API.
        return _api_error(unknown_url(request.method, request.path))
    if isinstance(error, RequestEntityTooLarge):
        limit = request.max_content_length or files.UPLOAD_BODY_LIMIT
        return _api_error(body_too_large(limit))
    return _api_error(ApiError(error.code or 400, error.description or "Bad request."))


def register_error_handlers(app: Quart) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_exception)
    answer_unexpected_errors(app, log, _FAILED)


def worker_app() -> Quart:
    """The app of one server process, with its settings read and its log set up."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return create_app(load_or_exit("engine", load_settings))
