"""The proxy's routes answered without Quart's per-request machinery.

Under load, Quart's own steps around each proxied request (pushing an app and a request
context, the blueprint-name walks of its before and after hooks, its signals, popping the
contexts) cost about as much as everything the gateway itself does in the handler (README,
"Where each request's CPU goes"). The proxy needs none of it: its handler is given the
request, and the two hooks every response gets are called directly. So a request whose URL
the map matches to a proxy rule is answered here, in the same app and connection
(asgi.ProxyHTTPConnection); every other request (the data plane's own endpoints, an unknown
URL, a method no rule takes) goes through Quart as before.

What the client sees is the same either way: the caller's request-log headers are read first
(a 400 when malformed), a GatewayError is answered with its response, and anything else
raised is handed to the app's own error handlers (the unexpected 500 among them) inside a
request context, as Quart would; then every response is stamped (headers.stamp).
"""

from quart import Quart, Response
from werkzeug.exceptions import HTTPException

from prism.operations import OPERATIONS, Operation

from .asgi import ProxyRequest
from .errors import GatewayError
from .headers import stamp
from .proxy import PROXY, Proxy
from .request_log import read_caller_headers


class ProxyDispatch:
    def __init__(self, app: Quart, proxy: Proxy) -> None:
        self._app = app
        self._proxy = proxy
        self._routes = {f"{PROXY}.{route.operation_id}": route for route in OPERATIONS}
        # Bound once, not per request as Quart does: without subdomain or host matching
        # (the app uses neither), a match depends on the path and method alone, which each
        # match is given.
        self._adapter = app.url_map.bind("")

    def match(self, request: ProxyRequest) -> tuple[Operation, dict[str, str]] | None:
        """The proxy route the request's URL matches and its path parameters (set on the
        request as Quart's routing would), or None for Quart to answer."""
        try:
            rule, path_parameters = self._adapter.match(
                request.path, request.method, return_rule=True
            )
        except HTTPException:
            # A 404, 405 or redirect: Quart matches again and answers it as it always has.
            return None
        route = self._routes.get(rule.endpoint)
        if route is None:
            return None
        request.url_rule, request.view_args = rule, path_parameters
        return route, path_parameters

    async def respond(
        self, request: ProxyRequest, route: Operation, path_parameters: dict[str, str]
    ) -> Response:
        try:
            read_caller_headers(request.log_facts, request.trace, request.headers)
            response = await self._proxy.handle(route, request, path_parameters)
        except GatewayError as error:
            response = error.response()
        except Exception as error:
            response = await self._answered_by_the_app(request, error)
        return stamp(response, request.trace)

    async def _answered_by_the_app(self, request: ProxyRequest, error: Exception) -> Response:
        async with self._app.request_context(request):
            answer = await self._app.handle_user_exception(error)
            return await self._app.make_response(answer)  # type: ignore[return-value]
