"""prism.v1.Admin: translates between the wire and the Registry, and domain errors into
gRPC status codes."""

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

import grpc
from google.protobuf.empty_pb2 import Empty

from controlplane import errors
from controlplane.registry import Registry
from controlplane.wire import key_to_wire, org_to_wire, policy_from_wire, time_from_wire
from prism.v1 import admin_pb2, admin_pb2_grpc

Request = TypeVar("Request")
Reply = TypeVar("Reply")
Handler = Callable[[Any, Request, grpc.aio.ServicerContext], Awaitable[Reply]]

_STATUS = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
}


def _status_on_error(handler: Handler[Request, Reply]) -> Handler[Request, Reply]:
    @wraps(handler)
    async def translated(self: Any, request: Request, context: grpc.aio.ServicerContext) -> Reply:
        try:
            return await handler(self, request, context)
        except errors.AdminError as error:
            await context.abort(_STATUS[type(error)], str(error))
            raise  # abort raises; this keeps type checkers aware that nothing returns

    return translated


class AdminService(admin_pb2_grpc.AdminServicer):
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    @_status_on_error
    async def CreateOrg(self, request: admin_pb2.CreateOrgRequest, context: Any) -> admin_pb2.Org:
        org = await self._registry.create_org(
            request.org_id,
            request.org.display_name,
            request.org.metadata,
            policy_from_wire(request.org.policy),
        )
        return org_to_wire(org)

    @_status_on_error
    async def GetOrg(self, request: admin_pb2.GetOrgRequest, context: Any) -> admin_pb2.Org:
        return org_to_wire(await self._registry.get_org(request.id))

    @_status_on_error
    async def ListOrgs(
        self, request: admin_pb2.ListOrgsRequest, context: Any
    ) -> admin_pb2.ListOrgsResponse:
        orgs, token = await self._registry.list_orgs(request.page_size, request.page_token)
        return admin_pb2.ListOrgsResponse(
            orgs=[org_to_wire(org) for org in orgs], next_page_token=token
        )

    @_status_on_error
    async def UpdateOrg(self, request: admin_pb2.UpdateOrgRequest, context: Any) -> admin_pb2.Org:
        org = request.org
        values = {
            "display_name": org.display_name,
            "metadata": org.metadata,
            "policy": policy_from_wire(org.policy),
        }
        updated = await self._registry.update_org(org.id, list(request.update_mask.paths), values)
        return org_to_wire(updated)

    @_status_on_error
    async def DeleteOrg(self, request: admin_pb2.DeleteOrgRequest, context: Any) -> Empty:
        await self._registry.delete_org(request.id, request.force)
        return Empty()

    @_status_on_error
    async def CreateKey(
        self, request: admin_pb2.CreateKeyRequest, context: Any
    ) -> admin_pb2.IssuedKey:
        key, secret = await self._registry.create_key(
            request.key.org_id,
            request.key.name,
            time_from_wire(request.key, "expire_time"),
            request.key.metadata,
            policy_from_wire(request.key.policy),
        )
        return admin_pb2.IssuedKey(key=key_to_wire(key), secret=secret)

    @_status_on_error
    async def GetKey(self, request: admin_pb2.GetKeyRequest, context: Any) -> admin_pb2.Key:
        return key_to_wire(await self._registry.get_key(request.id))

    @_status_on_error
    async def ListKeys(
        self, request: admin_pb2.ListKeysRequest, context: Any
    ) -> admin_pb2.ListKeysResponse:
        keys, token = await self._registry.list_keys(
            request.org_id, request.page_size, request.page_token
        )
        return admin_pb2.ListKeysResponse(
            keys=[key_to_wire(key) for key in keys], next_page_token=token
        )

    @_status_on_error
    async def UpdateKey(self, request: admin_pb2.UpdateKeyRequest, context: Any) -> admin_pb2.Key:
        key = request.key
        values = {
            "name": key.name,
            "expire_time": time_from_wire(key, "expire_time"),
            "metadata": key.metadata,
            "policy": policy_from_wire(key.policy),
        }
        updated = await self._registry.update_key(key.id, list(request.update_mask.paths), values)
        return key_to_wire(updated)

    @_status_on_error
    async def RevokeKey(self, request: admin_pb2.RevokeKeyRequest, context: Any) -> admin_pb2.Key:
        return key_to_wire(await self._registry.revoke_key(request.id))

    @_status_on_error
    async def RotateKey(
        self, request: admin_pb2.RotateKeyRequest, context: Any
    ) -> admin_pb2.IssuedKey:
        key, secret = await self._registry.rotate_key(request.id)
        return admin_pb2.IssuedKey(key=key_to_wire(key), secret=secret)
