"""The data plane's client of the control plane: Check, Record and FilterOwned for requests,
Renew for the slots they hold (leases.py), Health for /readyz.

One grpc.aio channel is opened when the server starts and reused by every call; every call
has the Check deadline and carries the data plane's credential (PRISM_DATAPLANE_TOKEN as
`authorization` metadata; over mTLS the channel's client certificate too). Record,
FilterOwned and Renew present the grants their requests' Checks returned. A failed Check or
FilterOwned (including its deadline) fails closed: the request is answered with 503 and
nothing more is forwarded. A failed Record raises RecordFailed, for the outbox (outbox.py)
to send it again or, when the control plane refused it for good, to drop it. A failed
Renew is logged and changes nothing: a slot not renewed in time is only freed early.
"""

import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from prism.v1 import authorizer_pb2, authorizer_pb2_grpc

from .config import Settings
from .errors import control_plane_unavailable
from .metrics import CHECK_RPC_SECONDS

log = logging.getLogger("prism.dataplane")

# A Record the control plane refused with one of these is never applied, however often it
# is sent: a grant it did not issue or that expired, a field out of range. Anything else
# (UNAVAILABLE, a deadline, a control plane starting up, a credential being rotated) may
# pass later.
_FINAL_RECORD_ERRORS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)


# The calls are spread over every control plane the address names (a gRPC target such as
# `ipv4:10.0.0.1:50051,10.0.0.2:50051`, or a DNS name with several addresses), and go on to
# the others while one is down; gRPC's default would send them all to the first.
# A control plane that was down (restarted, or slow to take its first connection) is tried
# again within 2 s, not after gRPC's default backoff of up to 120 s, which would leave the
# others carrying its share for minutes.
CHANNEL_OPTIONS = (
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


class RecordFailed(Exception):
    """A Record with no answer: `code` is the gRPC status's name; `final` when sending it
    again cannot help."""

    def __init__(self, code: str, final: bool) -> None:
        super().__init__(code)
        self.code = code
        self.final = final


class Authorizer:
    def __init__(self, settings: Settings) -> None:
        self._address = settings.controlplane_addr
        self._deadline = settings.check_deadline
        self._metadata = (
            (("authorization", f"Bearer {settings.dataplane_token}"),)
            if settings.dataplane_token
            else ()
        )
        identity = settings.controlplane_identity
        self._credentials = (
            None
            if settings.controlplane_ca is None
            else grpc.ssl_channel_credentials(
                root_certificates=settings.controlplane_ca,
                private_key=identity.private_key if identity else None,
                certificate_chain=identity.certificate_chain if identity else None,
            )
        )
        self._channel: grpc.aio.Channel | None = None

    async def open(self) -> None:
        self._channel = (
            grpc.aio.insecure_channel(self._address, options=CHANNEL_OPTIONS)
            if self._credentials is None
            else grpc.aio.secure_channel(self._address, self._credentials, CHANNEL_OPTIONS)
        )
        stub = authorizer_pb2_grpc.AuthorizerStub(self._channel)
        self._check = stub.Check
        self._record = stub.Record
        self._filter_owned = stub.FilterOwned
        self._renew = stub.Renew
        self._health = health_pb2_grpc.HealthStub(self._channel).Check

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def check(self, request: authorizer_pb2.CheckRequest) -> authorizer_pb2.CheckResponse:
        try:
            # Observed however the call ends, failures included.
            with CHECK_RPC_SECONDS.time():
                return await self._check(request, timeout=self._deadline, metadata=self._metadata)
        except grpc.RpcError as error:
            _warn("Check", request.request_id, error, "answering 503")
            raise control_plane_unavailable() from None

    async def record(self, request: authorizer_pb2.RecordRequest) -> authorizer_pb2.RecordResponse:
        """The control plane's answer (the runs' charges); RecordFailed when there is none."""
        try:
            reply: authorizer_pb2.RecordResponse = await self._record(
                request, timeout=self._deadline, metadata=self._metadata
            )
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.aio.AioRpcError) else None
            raise RecordFailed(
                code.name if code else "UNKNOWN", final=code in _FINAL_RECORD_ERRORS
            ) from None
        return reply

    async def filter_owned(self, grant: str, ids: list[str]) -> list[str]:
        """The ids of `ids` the org of the request's grant owns, in their order."""
        try:
            reply = await self._filter_owned(
                authorizer_pb2.FilterOwnedRequest(grant=grant, ids=ids),
                timeout=self._deadline,
                metadata=self._metadata,
            )
        except grpc.RpcError as error:
            _warn("FilterOwned", "a listing", error, "answering 503")
            raise control_plane_unavailable() from None
        return list(reply.ids)

    async def renew(self, grants: list[str]) -> list[bool] | None:
        """Per grant, whether its request's slot was renewed; None when the call failed."""
        try:
            reply = await self._renew(
                authorizer_pb2.RenewRequest(grants=grants),
                timeout=self._deadline,
                metadata=self._metadata,
            )
        except grpc.RpcError as error:
            _warn("Renew", f"{len(grants)} slot(s)", error, "tried again next interval")
            return None
        return list(reply.renewed)

    async def serving(self, timeout: float) -> bool:
        """Whether the control plane answers its gRPC health check with SERVING."""
        try:
            reply = await self._health(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING


def _warn(rpc: str, subject: str, error: grpc.RpcError, outcome: str) -> None:
    code = error.code() if isinstance(error, grpc.aio.AioRpcError) else None
    log.warning("%s failed for %s (%s): %s", rpc, subject, code and code.name, outcome)
