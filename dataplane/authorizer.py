"""The data plane's client of the control plane: one Check per request, Health for /readyz.

One grpc.aio channel is opened when the server starts and reused by every request. Any gRPC
failure of Check (including its deadline) fails closed: the request is answered with 503 and
nothing is forwarded.
"""

import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from prism.v1 import authorizer_pb2, authorizer_pb2_grpc

from .errors import control_plane_unavailable

log = logging.getLogger("prism.dataplane")


class Authorizer:
    def __init__(self, address: str, deadline: float) -> None:
        self._address = address
        self._deadline = deadline
        self._channel: grpc.aio.Channel | None = None

    async def open(self) -> None:
        self._channel = grpc.aio.insecure_channel(self._address)
        self._check = authorizer_pb2_grpc.AuthorizerStub(self._channel).Check
        self._health = health_pb2_grpc.HealthStub(self._channel).Check

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def check(self, request: authorizer_pb2.CheckRequest) -> authorizer_pb2.CheckResponse:
        try:
            return await self._check(request, timeout=self._deadline)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.aio.AioRpcError) else None
            log.warning(
                "Check failed for %s (%s): answering 503", request.request_id, code and code.name
            )
            raise control_plane_unavailable() from None

    async def serving(self, timeout: float) -> bool:
        """Whether the control plane answers its gRPC health check with SERVING."""
        try:
            reply = await self._health(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING
