"""The data plane's Quart application: `create_app(settings)` wires every part together."""

from quart import Quart, Response
from quart.globals import request_ctx

from .asgi import ProxyHTTPConnection, ProxyRequest
from .authorizer import Authorizer
from .config import Settings
from .errors import register_error_handlers
from .headers import stamp
from .health import Readiness, health_blueprint
from .proxy import proxy_blueprint
from .routes import CONVERTERS, UPLOAD_BODY_LIMIT
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

    authorizer = Authorizer(settings.controlplane_addr, settings.check_deadline)
    upstream = Upstream(settings.upstream_timeout)
    readiness = Readiness(authorizer, settings.redis_url)

    app.register_blueprint(proxy_blueprint(authorizer, upstream))
    app.register_blueprint(health_blueprint(readiness))
    register_error_handlers(app)

    @app.after_request
    async def add_prism_headers(response: Response) -> Response:
        return stamp(response, request_ctx.request.trace)  # type: ignore[attr-defined]

    @app.before_serving
    async def open_clients() -> None:
        await authorizer.open()
        await upstream.open()
        await readiness.open()

    @app.after_serving
    async def close_clients() -> None:
        await upstream.close()
        await authorizer.close()
        await readiness.close()

    return app
