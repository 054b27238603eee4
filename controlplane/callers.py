"""Who may call what: each service answers one kind of caller, which proves who it is with
the metadata `authorization: Bearer <credential>`.

| service               | callers            | credential                                      |
|-----------------------|--------------------|-------------------------------------------------|
| `prism.v1.Admin`      | operators          | PRISM_ADMIN_TOKEN                               |
| `prism.v1.Authorizer` | data planes        | PRISM_DATAPLANE_TOKEN, or with mTLS on, none    |
|                       |                    | beyond the client certificate the CA signed     |
| `prism.v1.Keys`       | internal services  | a service token (Admin/CreateServiceToken), or  |
|                       |                    | PRISM_ADMIN_TOKEN                               |

A call without its service's credential, or with another caller's, gets UNAUTHENTICATED and
reaches no servicer, so it reads and changes nothing. Health and reflection stay open: they
tell nothing of any tenant. Tokens are compared in constant time, so timing reveals nothing
of them.
"""

import hmac
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

import grpc
from redis.exceptions import RedisError

from controlplane.errors import Unavailable
from controlplane.service_tokens import ServiceTokens


class Caller(Enum):
    OPERATOR = "operator"
    DATA_PLANE = "data plane"
    SERVICE = "service"


# By method-name prefix.
SERVICE_CALLERS = {
    "/prism.v1.Admin/": Caller.OPERATOR,
    "/prism.v1.Authorizer/": Caller.DATA_PLANE,
    "/prism.v1.Keys/": Caller.SERVICE,
}
_BEARER = "Bearer "
MISSING = {
    Caller.OPERATOR: (
        "prism.v1.Admin needs the metadata 'authorization: Bearer <PRISM_ADMIN_TOKEN>'"
    ),
    Caller.DATA_PLANE: (
        "prism.v1.Authorizer answers data planes only: it needs the metadata "
        "'authorization: Bearer <PRISM_DATAPLANE_TOKEN>'; internal services validate keys "
        "with prism.v1.Keys"
    ),
    Caller.SERVICE: (
        "prism.v1.Keys needs a service credential: the metadata 'authorization: Bearer "
        "<token>' with a service token (Admin/CreateServiceToken) or the admin token"
    ),
}
WRONG = {
    Caller.OPERATOR: (
        "the token in 'authorization: Bearer <PRISM_ADMIN_TOKEN>' is not this control plane's "
        "PRISM_ADMIN_TOKEN"
    ),
    Caller.DATA_PLANE: (
        "the token in 'authorization: Bearer <PRISM_DATAPLANE_TOKEN>' is not this control "
        "plane's PRISM_DATAPLANE_TOKEN"
    ),
    Caller.SERVICE: (
        "the token in 'authorization: Bearer <token>' is neither a service token (unknown or "
        "revoked) nor the admin token"
    ),
}


class CallerInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        admin_token: str,
        dataplane_token: str,
        service_tokens: ServiceTokens,
        *,
        client_certificates: bool,
    ) -> None:
        self._admin = (_BEARER + admin_token).encode()
        self._dataplane = (_BEARER + dataplane_token).encode()
        self._service_tokens = service_tokens
        # The server requires client certificates its CA signed (PRISM_GRPC_TLS_CLIENT_CA).
        self._client_certificates = client_certificates

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        caller = _caller_of(details.method)
        if caller is None:
            return await continuation(details)
        presented = dict(details.invocation_metadata or ()).get("authorization")
        if presented is None:
            if caller is Caller.DATA_PLANE and self._client_certificates:
                handler = await continuation(details)
                # None: no such method, which gRPC answers UNIMPLEMENTED.
                return handler and _certificate_required(handler)
            return _refusal(grpc.StatusCode.UNAUTHENTICATED, MISSING[caller])
        try:
            accepted = await self._accepts(caller, str(presented))
        except (Unavailable, RedisError) as error:
            return _refusal(grpc.StatusCode.UNAVAILABLE, f"cannot check the token now: {error}")
        if not accepted:
            return _refusal(grpc.StatusCode.UNAUTHENTICATED, WRONG[caller])
        return await continuation(details)

    async def _accepts(self, caller: Caller, presented: str) -> bool:
        raw = presented.encode()
        if caller is Caller.DATA_PLANE:
            return hmac.compare_digest(raw, self._dataplane)
        if hmac.compare_digest(raw, self._admin):
            return True
        return caller is Caller.SERVICE and (
            presented.startswith(_BEARER)
            and await self._service_tokens.is_valid(presented.removeprefix(_BEARER))
        )


def _caller_of(method: str) -> Caller | None:
    for prefix, caller in SERVICE_CALLERS.items():
        if method.startswith(prefix):
            return caller
    return None


def _certificate_required(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """The handler, for a peer that proved itself with a client certificate: the server
    requires one at the handshake, and this confirms the call came with it."""

    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if not context.peer_identities():
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, MISSING[Caller.DATA_PLANE])
        return await handler.unary_unary(request, context)

    return grpc.unary_unary_rpc_method_handler(
        guarded,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _refusal(status: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(status, message)

    # Every guarded method is unary-unary, so one handler shape covers them all.
    return grpc.unary_unary_rpc_method_handler(refuse)
