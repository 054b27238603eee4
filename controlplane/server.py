"""Assembles the gRPC server: Admin, Authorizer, health and reflection."""

import grpc
import redis.asyncio as redis
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from controlplane.admin_service import AdminService
from controlplane.auth import AdminTokenInterceptor
from controlplane.authorizer import Authorizer, Upstream
from controlplane.authorizer_service import AuthorizerService
from controlplane.config import Settings
from controlplane.costs import Costs
from controlplane.credentials import Sealer
from controlplane.registry import Registry
from controlplane.request_logs import RequestLogs
from controlplane.store import Store
from controlplane.sweeper import Sweeper
from prism.v1 import admin_pb2, admin_pb2_grpc, authorizer_pb2, authorizer_pb2_grpc

REDIS_CONNECT_TIMEOUT = 5.0
SERVICE_NAMES = (
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
    authorizer_pb2.DESCRIPTOR.services_by_name["Authorizer"].full_name,
)


async def build(
    settings: Settings, store: Store
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, Sweeper]:
    """The server, not yet started, its health servicer and the run sweeper, not yet
    started either. Called once Redis has answered, so every service starts out SERVING."""
    server = grpc.aio.server(
        interceptors=[AdminTokenInterceptor(settings.admin_token)],
        # gRPC sets SO_REUSEPORT by default, which lets a second control plane share a port
        # already in use instead of failing; a taken PRISM_GRPC_LISTEN must be an error.
        options=[("grpc.so_reuseport", 0)],
    )
    sealer = Sealer(settings.master_key) if settings.master_key else None
    admin_pb2_grpc.add_AdminServicer_to_server(
        AdminService(Registry(store, sealer), Costs(store), RequestLogs(store.client)), server
    )
    upstream = Upstream(settings.upstream_url, settings.upstream_api_key)
    authorizer = Authorizer(store, upstream, sealer, fail_open=settings.ratelimit_fail_open)
    authorizer_pb2_grpc.add_AuthorizerServicer_to_server(AuthorizerService(authorizer), server)
    sweeper = Sweeper(
        authorizer,
        store,
        settings.sweep_interval_seconds,
        settings.sweep_after_seconds,
        charge_storage=settings.charge_vector_storage,
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    try:
        server.add_insecure_port(settings.grpc_listen)
    except RuntimeError:
        raise OSError(
            f"cannot listen on PRISM_GRPC_LISTEN={settings.grpc_listen}: the port is in use "
            "or the host is not an address of this machine"
        ) from None
    return server, health_servicer, sweeper


def redis_client(settings: Settings) -> redis.Redis:
    # A bounded connect timeout turns an unreachable Redis into an error at start (and an
    # UNAVAILABLE Check) rather than a hang for as long as the OS keeps trying.
    return redis.Redis.from_url(
        settings.redis_url, decode_responses=True, socket_connect_timeout=REDIS_CONNECT_TIMEOUT
    )
