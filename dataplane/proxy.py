"""The proxy blueprint: every operation of the route table, handled by one flow.

Per request: the route is matched (by the URL map) -> the client's key is read from
`Authorization: Bearer ...` -> a JSON body is read whole (413 over its limit, 400 when it is not
a JSON object) and the models it names are found -> ONE Check asks the control plane -> a
denial is answered with the control plane's error, anything else is forwarded. JSON bodies are
forwarded as the exact bytes received; uploads are streamed as they arrive.
"""

import json
from collections.abc import AsyncIterable, Callable, Coroutine
from typing import Any

from quart import Blueprint, Response
from quart.globals import request_ctx

from prism.v1 import authorizer_pb2

from .asgi import ProxyRequest
from .authorizer import Authorizer
from .errors import body_too_large, denial_response, malformed_json, unknown_url
from .routes import JSON_BODY_LIMIT, ROUTES, UPLOAD_BODY_LIMIT, BodyKind, Route
from .upstream import Upstream


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its key/value pairs, so a key given twice is seen twice."""


_DECODER = json.JSONDecoder(object_pairs_hook=_Pairs)


def proxy_blueprint(authorizer: Authorizer, upstream: Upstream) -> Blueprint:
    blueprint = Blueprint("proxy", __name__)
    proxy = _Proxy(authorizer, upstream)
    for route in ROUTES:
        blueprint.add_url_rule(
            route.rule,
            endpoint=route.operation_id,
            view_func=proxy.view(route),
            methods=[route.method],
            provide_automatic_options=False,
        )
    return blueprint


class _Proxy:
    def __init__(self, authorizer: Authorizer, upstream: Upstream) -> None:
        self._authorizer = authorizer
        self._upstream = upstream

    def view(self, route: Route) -> Callable[..., Coroutine[Any, Any, Response]]:
        async def view(**path_parameters: str) -> Response:
            return await self.handle(route, path_parameters)

        return view

    async def handle(self, route: Route, path_parameters: dict[str, str]) -> Response:
        request: ProxyRequest = request_ctx.request  # type: ignore[assignment]
        if request.method != route.method:
            # werkzeug adds HEAD to every GET rule; OpenAI's API has no HEAD operations.
            raise unknown_url(request.method, request.path)

        content: bytes | AsyncIterable[bytes] | None = None
        models: list[str] = []
        streaming = False
        if route.body is BodyKind.JSON:
            request.body.limit(JSON_BODY_LIMIT)
            content = await request.body.read(request.body_timeout)
            if content:
                models, streaming = _inspect_json(content, route)
        elif route.body is BodyKind.MULTIPART:
            if (request.content_length or 0) > UPLOAD_BODY_LIMIT:
                raise body_too_large(UPLOAD_BODY_LIMIT)
            content = request.body.chunks(request.body_timeout)

        decision = await self._authorizer.check(
            authorizer_pb2.CheckRequest(
                api_key=_bearer_token(request.headers.get("authorization", "")),
                client_ip=request.remote_addr or "",
                method=route.method,
                route=route.check_name,
                models=models,
                object_ids=path_parameters.values(),
                request_id=request.trace.request_id,
            )
        )
        if not decision.allowed:
            return denial_response(decision.denial)
        request.trace.provider = decision.upstream.provider
        return await self._upstream.forward(request, decision.upstream, content, streaming)


def _bearer_token(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _inspect_json(body: bytes, route: Route) -> tuple[list[str], bool]:
    """The models a JSON body names, and whether it asks for a stream; 400 when it is not an
    object. A field given twice counts twice, whichever copy the upstream would use."""
    try:
        document = _DECODER.decode(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise malformed_json("the body is not UTF-8.") from None
    except ValueError as error:
        raise malformed_json(f"{error}.") from None
    except RecursionError:
        raise malformed_json("the body is nested too deeply.") from None
    if not isinstance(document, _Pairs):
        raise malformed_json("the body must be a JSON object.")

    models = []
    streaming = False
    for name, value in document:
        if name in route.model_fields:
            if isinstance(value, str):
                models.append(value)
            elif value is not None:
                raise malformed_json(f"'{name}' must be a string.", param=name)
        elif name == "stream" and route.streams and value is True:
            streaming = True
    return models, streaming
