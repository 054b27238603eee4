"""prism.v1.Keys: translates ValidateKey between the wire and the Authorizer. Only callers
with a service credential reach it (callers.py)."""

from typing import Any

from controlplane.authorizer import Authorizer
from controlplane.statuses import aborts_on_domain_error
from controlplane.wire import validation_to_wire
from prism.v1 import keys_pb2, keys_pb2_grpc


class KeysService(keys_pb2_grpc.KeysServicer):
    def __init__(self, authorizer: Authorizer) -> None:
        self._authorizer = authorizer

    @aborts_on_domain_error
    async def ValidateKey(
        self, request: keys_pb2.ValidateKeyRequest, context: Any
    ) -> keys_pb2.ValidateKeyResponse:
        validation = await self._authorizer.validate(
            request.api_key, request.client_ip, request.model, request.route
        )
        return validation_to_wire(validation)
