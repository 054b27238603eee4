"""prism.v1.Authorizer: translates Check between the wire and the Authorizer.

A denial is an answer (allowed=false); a gRPC error means the control plane could not
decide, and the data plane then fails closed.
"""

from typing import Any

from controlplane.authorizer import Authorizer, Principal, Upstream
from controlplane.policy import Denial
from controlplane.statuses import aborts_on_domain_error
from prism.v1 import authorizer_pb2, authorizer_pb2_grpc


class AuthorizerService(authorizer_pb2_grpc.AuthorizerServicer):
    def __init__(self, authorizer: Authorizer) -> None:
        self._authorizer = authorizer

    @aborts_on_domain_error
    async def Check(
        self, request: authorizer_pb2.CheckRequest, context: Any
    ) -> authorizer_pb2.CheckResponse:
        decision = await self._authorizer.check(request.api_key, request.client_ip, request.models)
        return authorizer_pb2.CheckResponse(
            allowed=decision.allowed,
            denial=_denial(decision.denial),
            principal=_principal(decision.principal),
            upstream=_upstream(decision.upstream),
        )


def _denial(denial: Denial | None) -> authorizer_pb2.Denial | None:
    if denial is None:
        return None
    return authorizer_pb2.Denial(
        http_status=denial.http_status,
        type=denial.type,
        code=denial.code,
        message=denial.message,
        param=denial.param,
    )


def _principal(principal: Principal | None) -> authorizer_pb2.Principal | None:
    if principal is None:
        return None
    return authorizer_pb2.Principal(
        org_id=principal.org_id,
        key_id=principal.key_id,
        key_display_prefix=principal.key_display_prefix,
    )


def _upstream(upstream: Upstream | None) -> authorizer_pb2.Upstream | None:
    if upstream is None:
        return None
    return authorizer_pb2.Upstream(
        base_url=upstream.base_url, api_key=upstream.api_key, provider=upstream.provider
    )
