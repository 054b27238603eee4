"""Assembles the gRPC server: Admin, Authorizer, health and reflection."""

import grpc
import redis.asyncio as redis
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from controlplane.admin_auth import AdminTokenInterceptor
from controlplane.admin_service import AdminService
from controlplane.authorizer import Authorizer, Upstream
from controlplane.authorizer_service import AuthorizerService
from controlplane.config import Settings
from controlplane.registry import Registry
from controlplane.store import Store
from prism.v1 import admin_pb2, admin_pb2_grpc, authorizer_pb2, authorizer_pb2_grpc

SERVICE_NAMES = (
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
    authorizer_pb2.DESCRIPTOR.services_by_name["Authorizer"].full_name,
)


async def build(
    settings: Settings, store: Store
) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    server = grpc.aio.server(interceptors=[AdminTokenInterceptor(settings.admin_token)])
    admin_pb2_grpc.add_AdminServicer_to_server(AdminService(Registry(store)), server)
    upstream = Upstream(settings.upstream_url, settings.upstream_api_key)
    authorizer_pb2_grpc.add_AuthorizerServicer_to_server(
        AuthorizerService(Authorizer(store, upstream)), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    if not server.add_insecure_port(settings.grpc_listen):
        raise OSError(f"cannot bind PRISM_GRPC_LISTEN={settings.grpc_listen}")
    return server, health_servicer


def redis_client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, decode_responses=True)
