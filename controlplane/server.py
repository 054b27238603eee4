"""Assembles the gRPC server: Admin, Authorizer, Keys, health and reflection, behind the
caller check (callers.py), on a plaintext or TLS port."""

import socket

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from controlplane.accounts import Accounts
from controlplane.admin_service import AdminService
from controlplane.authorizer import Authorizer
from controlplane.authorizer_service import AuthorizerService
from controlplane.callers import CallerInterceptor
from controlplane.charges import Charges
from controlplane.check_request import Upstream
from controlplane.config import Settings
from controlplane.costs import Costs
from controlplane.credentials import Sealer
from controlplane.decisions import Decisions
from controlplane.grants import Grants
from controlplane.keys_service import KeysService
from controlplane.prices import Prices
from controlplane.registry import Registry
from controlplane.request_logs import RequestLogs
from controlplane.run_queue import RunQueue
from controlplane.service_tokens import ServiceTokens
from controlplane.slot_leases import SlotLeases
from controlplane.storage_fees import StorageFeeClaims
from controlplane.sweeper import Sweeper
from controlplane.usage_reads import UsageReads
from prism.redis_client import AsyncRedis, async_client
from prism.settings import UNIX_SOCKET_PREFIX, unix_socket_path
from prism.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    authorizer_pb2,
    authorizer_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
)

REDIS_CONNECT_TIMEOUT = 5.0
# gRPC sets SO_REUSEPORT by default, which lets a second control plane share a port already
# in use instead of failing; a taken PRISM_GRPC_LISTEN must be an error.
SERVER_OPTIONS = (("grpc.so_reuseport", 0),)
SERVICE_NAMES = (
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
    authorizer_pb2.DESCRIPTOR.services_by_name["Authorizer"].full_name,
    keys_pb2.DESCRIPTOR.services_by_name["Keys"].full_name,
)


async def build(
    settings: Settings, client: AsyncRedis
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, Sweeper]:
    """The server, not yet started, its health servicer and the run sweeper, not yet
    started either. Called once Redis has answered, so every service starts out SERVING."""
    accounts, prices = Accounts(client), Prices(client)
    service_tokens = ServiceTokens(client)
    callers = CallerInterceptor(
        settings.admin_token,
        settings.dataplane_token,
        service_tokens,
        client_certificates=settings.client_ca is not None,
    )
    server = grpc.aio.server(interceptors=[callers], options=SERVER_OPTIONS)
    sealer = Sealer(settings.master_key) if settings.master_key else None
    admin_pb2_grpc.add_AdminServicer_to_server(
        AdminService(
            Registry(accounts, sealer),
            Costs(prices, UsageReads(client), accounts),
            RequestLogs(client),
            service_tokens,
        ),
        server,
    )
    upstream = Upstream(settings.upstream_url, settings.upstream_api_key)
    grants = Grants(await accounts.grant_key())
    authorizer = Authorizer(
        accounts,
        Decisions(client),
        Charges(client),
        SlotLeases(client, settings.slot_lease_ms),
        upstream,
        grants,
        sealer,
        fail_open=settings.ratelimit_fail_open,
    )
    authorizer_pb2_grpc.add_AuthorizerServicer_to_server(AuthorizerService(authorizer), server)
    keys_pb2_grpc.add_KeysServicer_to_server(KeysService(authorizer), server)
    sweeper = Sweeper(
        authorizer,
        accounts,
        RunQueue(client),
        prices,
        StorageFeeClaims(client),
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
    _listen(server, settings)
    return server, health_servicer, sweeper


def _listen(server: grpc.aio.Server, settings: Settings) -> None:
    """Binds PRISM_GRPC_LISTEN, plaintext or TLS; OSError when it cannot be bound."""
    address = settings.grpc_listen
    unix = address.startswith(UNIX_SOCKET_PREFIX)
    if unix:
        _refuse_a_live_socket(address)
    try:
        if settings.tls is None:
            server.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials(
                [(settings.tls.private_key, settings.tls.certificate_chain)],
                root_certificates=settings.client_ca,
                require_client_auth=settings.client_ca is not None,
            )
            server.add_secure_port(address, credentials)
    except RuntimeError:
        why = (
            "its directory is missing or not writable, or a file that is not a socket is there"
            if unix
            else "the port is in use or the host is not an address of this machine"
        )
        raise OSError(f"cannot listen on PRISM_GRPC_LISTEN={address}: {why}") from None


def _refuse_a_live_socket(address: str) -> None:
    """OSError when a server answers on the Unix socket already. gRPC replaces the socket file
    it binds, so a second control plane would silently take the first one's callers; a file
    nobody answers on is left over from a process that did not stop cleanly, and is replaced."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(unix_socket_path(address))
        except OSError:
            return
    raise OSError(f"cannot listen on PRISM_GRPC_LISTEN={address}: a server is listening there")


def redis_client(settings: Settings) -> AsyncRedis:
    # A bounded connect timeout turns an unreachable Redis into an error at start (and an
    # UNAVAILABLE Check) rather than a hang for as long as the OS keeps trying.
    return async_client(
        settings.redis_url, decode_responses=True, socket_connect_timeout=REDIS_CONNECT_TIMEOUT
    )
