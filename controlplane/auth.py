"""The admin token guard: every prism.v1.Admin call needs
`authorization: Bearer <PRISM_ADMIN_TOKEN>`. Check, health and reflection stay open: the
data plane and internal services call Check with a Prism key inside the request."""

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

ADMIN_METHODS = "/prism.v1.Admin/"
MISSING = "prism.v1.Admin needs the metadata 'authorization: Bearer <PRISM_ADMIN_TOKEN>'"
WRONG = (
    "the token in 'authorization: Bearer <PRISM_ADMIN_TOKEN>' is not this control plane's "
    "PRISM_ADMIN_TOKEN"
)


class AdminTokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if not details.method.startswith(ADMIN_METHODS):
            return await continuation(details)
        presented = dict(details.invocation_metadata or ()).get("authorization")
        if presented is None:
            return _refusal(MISSING)
        # Constant time, so response timing reveals nothing about the token.
        if not hmac.compare_digest(str(presented).encode(), self._expected):
            return _refusal(WRONG)
        return await continuation(details)


def _refusal(message: str) -> grpc.RpcMethodHandler:
    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    # Every Admin method is unary-unary, so one handler shape covers them all.
    return grpc.unary_unary_rpc_method_handler(refuse)
