"""The proxy blueprint: every operation of the route table, handled by one flow.

Per request: the route is matched (by the URL map) -> the client's key is read from
`Authorization: Bearer ...` -> a JSON body is read whole (413 over its limit, 400 when it is not
a JSON object) and the models and objects it names are found (references.py) -> ONE Check asks
the control plane, with the client's address (client_ip.py) -> a denial is answered with the
control plane's error, anything else is forwarded (or, for the listings of objects an org owns,
walked: listing.py) and its response shown to the request's Record (records.py). JSON bodies
are forwarded as the exact bytes received; uploads are streamed as they arrive. Every response
after Check carries the client's rate-limit headers.
"""

from collections.abc import AsyncIterable
from functools import partial

from quart import Blueprint, Response

from prism.operations import OPERATIONS, BodyKind, Operation
from prism.v1 import authorizer_pb2
from prism.wire_copy import to_message

from .asgi import ProxyRequest
from .authorizer import Authorizer
from .client_ip import ClientAddress
from .errors import GatewayError, body_too_large, denial_response, unknown_url
from .headers import rate_limit_headers
from .listing import OWNED_LISTINGS, owned_listing
from .records import Recorder
from .references import request_facts
from .routes import JSON_BODY_LIMIT, UPLOAD_BODY_LIMIT, url_rule
from .upstream import Upstream

# The blueprint's name: its endpoints are `proxy.<operation id>`.
PROXY = "proxy"


def proxy_blueprint() -> Blueprint:
    """One URL rule per operation of the table, endpoint its operation id. The rules carry no
    view: the URL map matches them, and dispatch.py answers them with `Proxy.handle`."""
    blueprint = Blueprint(PROXY, __name__)
    for route in OPERATIONS:
        blueprint.add_url_rule(
            url_rule(route),
            endpoint=route.operation_id,
            methods=[route.method],
            provide_automatic_options=False,
        )
    return blueprint


class Proxy:
    def __init__(
        self,
        authorizer: Authorizer,
        upstream: Upstream,
        recorder: Recorder,
        client_address: ClientAddress,
    ) -> None:
        self._authorizer = authorizer
        self._upstream = upstream
        self._recorder = recorder
        self._client_address = client_address

    async def handle(
        self, route: Operation, request: ProxyRequest, path_parameters: dict[str, str]
    ) -> Response:
        if request.method != route.method:
            # werkzeug adds HEAD to every GET rule; OpenAI's API has no HEAD operations.
            raise unknown_url(request.method, request.path)
        logged = request.log_facts

        content: bytes | AsyncIterable[bytes] | None = None
        if route.body is BodyKind.JSON:
            request.body.limit(JSON_BODY_LIMIT)
            content = await request.body.read(request.body_timeout)
            logged.request_bytes = content
        elif route.body is BodyKind.MULTIPART:
            if (request.content_length or 0) > UPLOAD_BODY_LIMIT:
                raise body_too_large(UPLOAD_BODY_LIMIT)
            content = request.body.chunks(request.body_timeout)
            logged.upload_content_type = request.headers.get("content-type", "")
        facts = request_facts(
            route, path_parameters, content if isinstance(content, bytes) else b""
        )
        logged.model = facts.models[0] if facts.models else ""

        logged.client_ip = self._client_address.of(request)
        decision = await self._authorizer.check(
            # The facts' models, objects and model_object_id, with who asks and for what.
            to_message(
                authorizer_pb2.CheckRequest,
                facts,
                api_key=_bearer_token(request.headers.get("authorization", "")),
                client_ip=logged.client_ip,
                method=route.method,
                route=route.name,
                uses_model=route.uses_model,
                request_id=request.trace.request_id,
            )
        )
        request.trace.limits = rate_limit_headers(decision)
        logged.checked(decision)
        if not decision.allowed:
            return denial_response(decision.denial)
        request.trace.provider = decision.upstream.provider
        record = self._recorder.start(
            route,
            request.trace,
            decision,
            facts,
            partial(self._call_upstream, request, decision.upstream),
        )
        request.on_response_over = record.over
        try:
            if route.name not in OWNED_LISTINGS:
                return await self._upstream.forward(request, decision.upstream, content, record)
            listing = await owned_listing(
                request,
                decision.upstream,
                decision.grant,
                self._upstream,
                self._authorizer.filter_owned,
            )
        except GatewayError:
            # A client retrying at once must find the request's slot free.
            await record.end()
            raise
        await record.end()
        return listing

    async def _call_upstream(
        self, request: ProxyRequest, target: authorizer_pb2.Upstream, method: str, path: str
    ) -> tuple[int, bytes]:
        status, _, body = await self._upstream.call(request, target, method, path)
        return status, body


def _bearer_token(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
