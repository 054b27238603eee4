"""prism.v1.Authorizer: translates Check between the wire and the Authorizer."""

from typing import Any

from controlplane.authorizer import Authorizer
from prism.v1 import authorizer_pb2, authorizer_pb2_grpc


class AuthorizerService(authorizer_pb2_grpc.AuthorizerServicer):
    def __init__(self, authorizer: Authorizer) -> None:
        self._authorizer = authorizer

    async def Check(
        self, request: authorizer_pb2.CheckRequest, context: Any
    ) -> authorizer_pb2.CheckResponse:
        decision = await self._authorizer.check(request.api_key, request.client_ip, request.models)
        response = authorizer_pb2.CheckResponse(allowed=decision.allowed)
        if decision.denial:
            denial = decision.denial
            response.denial.CopyFrom(
                authorizer_pb2.Denial(
                    http_status=denial.http_status,
                    type=denial.type,
                    code=denial.code,
                    message=denial.message,
                    param=denial.param,
                )
            )
        if decision.principal:
            principal = decision.principal
            response.principal.CopyFrom(
                authorizer_pb2.Principal(
                    org_id=principal.org_id,
                    key_id=principal.key_id,
                    key_display_prefix=principal.key_display_prefix,
                )
            )
        if decision.upstream:
            upstream = decision.upstream
            response.upstream.CopyFrom(
                authorizer_pb2.Upstream(
                    base_url=upstream.base_url,
                    api_key=upstream.api_key,
                    provider=upstream.provider,
                )
            )
        return response
