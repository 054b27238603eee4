"""prism.v1.Admin: translates between the wire and the Registry."""

from typing import Any

from google.protobuf.empty_pb2 import Empty

from controlplane.costs import Costs
from controlplane.errors import InvalidArgument
from controlplane.registry import Registry
from controlplane.request_logs import RequestLogs
from controlplane.service_tokens import ServiceTokens
from controlplane.statuses import aborts_on_domain_error
from controlplane.wire import (
    expire_time_from_wire,
    key_to_wire,
    model_price_to_wire,
    org_to_wire,
    policy_from_wire,
    request_logging_from_wire,
    service_token_to_wire,
    tool_fees_to_wire,
)
from controlplane.wire_reports import (
    log_query_from_wire,
    request_log_to_wire,
    usage_query_from_wire,
    usage_row_to_wire,
)
from prism.v1 import admin_pb2, admin_pb2_grpc


class AdminService(admin_pb2_grpc.AdminServicer):
    def __init__(
        self,
        registry: Registry,
        costs: Costs,
        request_logs: RequestLogs,
        service_tokens: ServiceTokens,
    ) -> None:
        self._registry = registry
        self._costs = costs
        self._request_logs = request_logs
        self._service_tokens = service_tokens

    @aborts_on_domain_error
    async def CreateOrg(self, request: admin_pb2.CreateOrgRequest, context: Any) -> admin_pb2.Org:
        if request.org.id and request.org.id != request.org_id:
            # An easy slip with grpcurl; ignoring it would create an org with another id.
            raise InvalidArgument("org.id is output only; choose the org's id with org_id")
        org = await self._registry.create_org(
            request.org_id,
            request.org.display_name,
            request.org.metadata,
            policy_from_wire(request.org.policy),
            request_logging_from_wire(request.org.request_logging),
        )
        return org_to_wire(org)

    @aborts_on_domain_error
    async def GetOrg(self, request: admin_pb2.GetOrgRequest, context: Any) -> admin_pb2.Org:
        return org_to_wire(await self._registry.get_org(request.id))

    @aborts_on_domain_error
    async def ListOrgs(
        self, request: admin_pb2.ListOrgsRequest, context: Any
    ) -> admin_pb2.ListOrgsResponse:
        orgs, token = await self._registry.list_orgs(request.page_size, request.page_token)
        return admin_pb2.ListOrgsResponse(
            orgs=[org_to_wire(org) for org in orgs], next_page_token=token
        )

    @aborts_on_domain_error
    async def UpdateOrg(self, request: admin_pb2.UpdateOrgRequest, context: Any) -> admin_pb2.Org:
        org = request.org
        values = {
            "display_name": org.display_name,
            "metadata": org.metadata,
            "policy": policy_from_wire(org.policy),
            "request_logging": request_logging_from_wire(org.request_logging),
        }
        updated = await self._registry.update_org(org.id, list(request.update_mask.paths), values)
        return org_to_wire(updated)

    @aborts_on_domain_error
    async def DeleteOrg(self, request: admin_pb2.DeleteOrgRequest, context: Any) -> Empty:
        await self._registry.delete_org(request.id, request.force)
        return Empty()

    @aborts_on_domain_error
    async def CreateKey(
        self, request: admin_pb2.CreateKeyRequest, context: Any
    ) -> admin_pb2.IssuedKey:
        key, secret = await self._registry.create_key(
            request.key.org_id,
            request.key.name,
            expire_time_from_wire(request.key),
            request.key.metadata,
            policy_from_wire(request.key.policy),
        )
        return admin_pb2.IssuedKey(key=key_to_wire(key), secret=secret)

    @aborts_on_domain_error
    async def GetKey(self, request: admin_pb2.GetKeyRequest, context: Any) -> admin_pb2.Key:
        return key_to_wire(await self._registry.get_key(request.id))

    @aborts_on_domain_error
    async def ListKeys(
        self, request: admin_pb2.ListKeysRequest, context: Any
    ) -> admin_pb2.ListKeysResponse:
        keys, token = await self._registry.list_keys(
            request.org_id, request.page_size, request.page_token
        )
        return admin_pb2.ListKeysResponse(
            keys=[key_to_wire(key) for key in keys], next_page_token=token
        )

    @aborts_on_domain_error
    async def UpdateKey(self, request: admin_pb2.UpdateKeyRequest, context: Any) -> admin_pb2.Key:
        key = request.key
        values = {
            "name": key.name,
            "expire_time": expire_time_from_wire(key),
            "metadata": key.metadata,
            "policy": policy_from_wire(key.policy),
        }
        updated = await self._registry.update_key(key.id, list(request.update_mask.paths), values)
        return key_to_wire(updated)

    @aborts_on_domain_error
    async def RevokeKey(self, request: admin_pb2.RevokeKeyRequest, context: Any) -> admin_pb2.Key:
        return key_to_wire(await self._registry.revoke_key(request.id))

    @aborts_on_domain_error
    async def RotateKey(
        self, request: admin_pb2.RotateKeyRequest, context: Any
    ) -> admin_pb2.IssuedKey:
        key, secret = await self._registry.rotate_key(request.id)
        return admin_pb2.IssuedKey(key=key_to_wire(key), secret=secret)

    @aborts_on_domain_error
    async def SetUpstreamCredential(
        self, request: admin_pb2.SetUpstreamCredentialRequest, context: Any
    ) -> admin_pb2.Org:
        org = await self._registry.set_upstream_credential(request.org_id, request.api_key)
        return org_to_wire(org)

    @aborts_on_domain_error
    async def SetModelPrice(
        self, request: admin_pb2.ModelPrice, context: Any
    ) -> admin_pb2.ModelPrice:
        model, price = await self._costs.set_model_price(
            request.model,
            request.input_usd_per_million,
            request.cached_input_usd_per_million,
            request.output_usd_per_million,
        )
        return model_price_to_wire(model, price, custom=True)

    @aborts_on_domain_error
    async def ListModelPrices(
        self, request: admin_pb2.ListModelPricesRequest, context: Any
    ) -> admin_pb2.ListModelPricesResponse:
        prices, fees = await self._costs.prices()
        return admin_pb2.ListModelPricesResponse(
            prices=[model_price_to_wire(*listed) for listed in prices],
            tool_fees=tool_fees_to_wire(fees),
        )

    @aborts_on_domain_error
    async def SetToolFees(self, request: admin_pb2.ToolFees, context: Any) -> admin_pb2.ToolFees:
        fees = await self._costs.set_tool_fees(
            request.file_search_usd_per_thousand_calls,
            request.vector_store_usd_per_gb_day,
            request.code_interpreter_usd_per_session,
        )
        return tool_fees_to_wire(fees)

    @aborts_on_domain_error
    async def GetUsage(
        self, request: admin_pb2.GetUsageRequest, context: Any
    ) -> admin_pb2.GetUsageResponse:
        rows, total = await self._costs.usage(usage_query_from_wire(request))
        return admin_pb2.GetUsageResponse(
            rows=[usage_row_to_wire(row) for row in rows], total=usage_row_to_wire(total)
        )

    @aborts_on_domain_error
    async def ListRequestLogs(
        self, request: admin_pb2.ListRequestLogsRequest, context: Any
    ) -> admin_pb2.ListRequestLogsResponse:
        entries, token = await self._request_logs.find(log_query_from_wire(request))
        return admin_pb2.ListRequestLogsResponse(
            logs=[request_log_to_wire(entry) for entry in entries], next_page_token=token
        )

    @aborts_on_domain_error
    async def GetRequestLog(
        self, request: admin_pb2.GetRequestLogRequest, context: Any
    ) -> admin_pb2.RequestLog:
        return request_log_to_wire(await self._request_logs.get(request.request_id))

    @aborts_on_domain_error
    async def CreateServiceToken(
        self, request: admin_pb2.CreateServiceTokenRequest, context: Any
    ) -> admin_pb2.IssuedServiceToken:
        token, secret = await self._service_tokens.create(request.name)
        return admin_pb2.IssuedServiceToken(token=service_token_to_wire(token), secret=secret)

    @aborts_on_domain_error
    async def ListServiceTokens(
        self, request: admin_pb2.ListServiceTokensRequest, context: Any
    ) -> admin_pb2.ListServiceTokensResponse:
        tokens, page_token = await self._service_tokens.list(request.page_size, request.page_token)
        return admin_pb2.ListServiceTokensResponse(
            tokens=[service_token_to_wire(token) for token in tokens],
            next_page_token=page_token,
        )

    @aborts_on_domain_error
    async def RevokeServiceToken(
        self, request: admin_pb2.RevokeServiceTokenRequest, context: Any
    ) -> admin_pb2.ServiceToken:
        return service_token_to_wire(await self._service_tokens.revoke(request.id))
