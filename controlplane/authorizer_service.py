"""prism.v1.Authorizer: translates Check, Record, FilterOwned and Renew between the wire and the
Authorizer. Only data planes reach it (callers.py).

A denial is an answer (allowed=false); a gRPC error means the control plane could not
decide, and the data plane then fails closed. Record, FilterOwned and Renew act for the org,
key and request of the grants they present, never for ids on the wire.
"""

from typing import Any

from controlplane.authorizer import Authorizer
from controlplane.check_request import CheckInput, Decision, ObjectRef
from controlplane.errors import InvalidArgument
from controlplane.metrics import CHECK_DECISIONS, CHECK_SECONDS
from controlplane.record_request import RecordInput, StepSeen
from controlplane.statuses import aborts_on_domain_error
from controlplane.wire import denial_to_wire, request_logging_to_wire
from prism.runs import EndedRun
from prism.v1 import authorizer_pb2, authorizer_pb2_grpc
from prism.wire_copy import from_message, to_message

# Most answers, counted without looking their labels up each time.
_ALLOWED = CHECK_DECISIONS.labels("allowed", "")
_KIND_PREFIX = "OBJECT_KIND_"
# OBJECT_KIND_VECTOR_STORE -> vector_store, by number; OBJECT_KIND_UNSPECIFIED (0) is no kind.
_KINDS = {
    number: name.removeprefix(_KIND_PREFIX).lower()
    for name, number in authorizer_pb2.ObjectKind.items()
    if number
}


def _kind(wire_kind: int) -> str:
    kind = _KINDS.get(wire_kind)
    if kind is None:
        raise InvalidArgument(f"object kind {wire_kind} is not an ObjectKind")
    return kind


class AuthorizerService(authorizer_pb2_grpc.AuthorizerServicer):
    def __init__(self, authorizer: Authorizer) -> None:
        self._authorizer = authorizer

    @aborts_on_domain_error
    async def Check(
        self, request: authorizer_pb2.CheckRequest, context: Any
    ) -> authorizer_pb2.CheckResponse:
        with CHECK_SECONDS.time():  # failures included: a slow Redis shows either way
            decision = await self._authorizer.check(
                CheckInput(
                    api_key=request.api_key,
                    client_ip=request.client_ip,
                    method=request.method,
                    route=request.route,
                    models=request.models,
                    objects=[
                        ObjectRef(ref.id, _kind(ref.kind), ref.param) for ref in request.objects
                    ],
                    model_object_id=request.model_object_id,
                    uses_model=request.uses_model,
                    request_id=request.request_id,
                    max_prompt_tokens=request.max_prompt_tokens,
                    max_completion_tokens=request.max_completion_tokens,
                )
            )
        if decision.denial is None:
            _ALLOWED.inc()
        else:
            CHECK_DECISIONS.labels("denied", decision.denial.code).inc()
        return _check_response(decision)

    @aborts_on_domain_error
    async def Record(
        self, request: authorizer_pb2.RecordRequest, context: Any
    ) -> authorizer_pb2.RecordResponse:
        grant = self._authorizer.grant(request.grant)
        charges = await self._authorizer.record(
            RecordInput(
                request_id=grant.request_id,
                org_id=grant.org_id,
                key_id=grant.key_id,
                objects=[
                    (item.id, _kind(item.kind), item.model, item.thread_id)
                    for item in request.objects
                ],
                deleted_ids=request.deleted_ids,
                runs=[from_message(EndedRun, run) for run in request.runs],
                finished=request.finished,
                steps=[from_message(StepSeen, step) for step in request.steps],
                sequence=request.sequence,
            )
        )
        return authorizer_pb2.RecordResponse(
            runs=[to_message(authorizer_pb2.RunCharge, charge) for charge in charges]
        )

    @aborts_on_domain_error
    async def FilterOwned(
        self, request: authorizer_pb2.FilterOwnedRequest, context: Any
    ) -> authorizer_pb2.FilterOwnedResponse:
        grant = self._authorizer.grant(request.grant)
        owned = await self._authorizer.filter_owned(grant.org_id, request.ids)
        return authorizer_pb2.FilterOwnedResponse(ids=owned)

    @aborts_on_domain_error
    async def Renew(
        self, request: authorizer_pb2.RenewRequest, context: Any
    ) -> authorizer_pb2.RenewResponse:
        return authorizer_pb2.RenewResponse(renewed=await self._authorizer.renew(request.grants))


def _check_response(decision: Decision) -> authorizer_pb2.CheckResponse:
    response = authorizer_pb2.CheckResponse(
        allowed=decision.allowed,
        shadow_exceeded=decision.shadow_exceeded,
        record_wanted=decision.record_wanted,
        slot_lease_ms=decision.slot_lease_ms,
        grant=decision.grant,
    )
    # Each reported unit is the CheckResponse field of its status (prism.rate_limit_units).
    for unit, status in decision.rate_statuses.items():
        getattr(response, unit).CopyFrom(to_message(authorizer_pb2.RateLimitStatus, status))
    if decision.denial is not None:
        response.denial.CopyFrom(denial_to_wire(decision.denial))
    if decision.principal is not None:
        principal = decision.principal
        response.principal.CopyFrom(to_message(authorizer_pb2.Principal, principal))
        response.request_logging.CopyFrom(request_logging_to_wire(principal.request_logging))
    if decision.upstream is not None:
        response.upstream.CopyFrom(to_message(authorizer_pb2.Upstream, decision.upstream))
    return response
