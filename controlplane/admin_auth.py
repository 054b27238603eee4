"""The admin token guard: every prism.v1.Admin call needs
`authorization: Bearer <PRISM_ADMIN_TOKEN>`. Check, health and reflection stay open: the
data plane and internal services call Check with a Prism key inside the request."""

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

ADMIN_METHODS = "/prism.v1.Admin/"


class AdminTokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if not details.method.startswith(ADMIN_METHODS) or self._authorized(details):
            return await continuation(details)
        return grpc.unary_unary_rpc_method_handler(_unauthenticated)

    def _authorized(self, details: grpc.HandlerCallDetails) -> bool:
        presented = dict(details.invocation_metadata or ()).get("authorization", "")
        return hmac.compare_digest(str(presented).encode(), self._expected)


async def _unauthenticated(request: Any, context: grpc.aio.ServicerContext) -> None:
    await context.abort(
        grpc.StatusCode.UNAUTHENTICATED,
        "prism.v1.Admin needs the metadata 'authorization: Bearer <PRISM_ADMIN_TOKEN>'",
    )
