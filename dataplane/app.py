"""The data plane's Quart application: `create_app(settings)` wires every part together, and
`worker_app()` is what each server process loads (see __main__.py)."""

import logging

from quart import Quart, Response
from quart.globals import request_ctx

from prism.settings import load_or_exit

from . import framing
from .asgi import PROXY_DISPATCH, REQUEST_LOG, ProxyHTTPConnection, ProxyRequest
from .authorizer import Authorizer
from .client_ip import ClientAddress
from .config import Settings, load_settings
from .dispatch import ProxyDispatch
from .errors import register_error_handlers
from .headers import stamp
from .health import Readiness, health_blueprint
from .leases import Leases
from .log_writer import RedisLogWriter, StdoutLines
from .metrics import metrics_blueprint
from .metrics import observe as count_request
from .outbox import Outbox
from .proxy import Proxy, proxy_blueprint
from .records import Recorder
from .request_log import RequestLog, read_caller_headers
from .routes import CONVERTERS, UPLOAD_BODY_LIMIT
from .spool import Spool
from .upstream import Upstream


def create_app(settings: Settings) -> Quart:
    app = Quart("dataplane", static_folder=None)
    app.request_class = ProxyRequest
    app.asgi_http_class = ProxyHTTPConnection
    # The largest body any route accepts; JSON routes lower it per request.
    app.config["MAX_CONTENT_LENGTH"] = UPLOAD_BODY_LIMIT
    # `//` in a path is an unknown URL, not a redirect.
    app.url_map.merge_slashes = False
    app.url_map.converters.update(CONVERTERS)

    authorizer = Authorizer(settings)
    leases = Leases(authorizer)
    outbox = Outbox(Spool(settings.outbox_dir), authorizer)
    recorder = Recorder(outbox, settings.check_deadline, leases)
    upstream = Upstream(settings.upstream_timeout)
    readiness = Readiness(authorizer, settings.redis_url)

    client_address = ClientAddress(settings.trusted_proxies)
    # Each request's log entry is handed to every observer once the request is over; they
    # must not block (request_log.py).
    log_writer = RedisLogWriter(
        settings.redis_url, settings.log_max_records, settings.log_retention_hours
    )
    stdout_lines = StdoutLines()
    app.extensions[REQUEST_LOG] = RequestLog(
        (log_writer.submit, stdout_lines.submit, count_request), client_address
    )

    app.register_blueprint(proxy_blueprint())
    app.extensions[PROXY_DISPATCH] = ProxyDispatch(
        app, Proxy(authorizer, upstream, recorder, client_address)
    )
    app.register_blueprint(health_blueprint(readiness))
    app.register_blueprint(metrics_blueprint())
    register_error_handlers(app)

    # The proxy's routes get these two from dispatch.py, which answers them.
    @app.before_request
    async def read_caller_headers_first() -> None:
        request: ProxyRequest = request_ctx.request  # type: ignore[assignment]
        read_caller_headers(request.log_facts, request.trace, request.headers)

    @app.after_request
    async def add_prism_headers(response: Response) -> Response:
        return stamp(response, request_ctx.request.trace)  # type: ignore[attr-defined]

    @app.before_serving
    async def open_clients() -> None:
        await authorizer.open()
        outbox.open()
        await leases.open()
        await upstream.open()
        await readiness.open()
        stdout_lines.open()
        await log_writer.open()

    @app.after_serving
    async def close_clients() -> None:
        await upstream.close()
        # Every request is over: no slot is left to renew.
        await leases.close()
        # Records still being sent need the channel: they end before it closes.
        await recorder.close()
        await outbox.close()
        await authorizer.close()
        await readiness.close()
        # Last: every request is over, so every entry is buffered.
        await log_writer.close()
        stdout_lines.close()

    return app


def worker_app() -> Quart:
    """The app of one server process. Hypercorn starts each worker as a new interpreter (not
    a fork), so a worker reads its settings (the parent checked them) and sets up its log."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    framing.install()
    return create_app(load_or_exit("dataplane", load_settings))
