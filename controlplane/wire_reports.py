"""Conversions between prism.v1 messages and the reports Admin answers: usage (queries and
rows) and the request log (queries and entries)."""

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format

from controlplane import pricing, usage
from controlplane.errors import InvalidArgument
from controlplane.request_logs import LogQuery
from prism.v1 import admin_pb2
from prism.wire_copy import to_message

_GROUPING_PREFIX = "USAGE_GROUPING_"


def usage_query_from_wire(request: admin_pb2.GetUsageRequest) -> usage.Query:
    groups = []
    for value in request.group_by:
        if value not in admin_pb2.UsageGrouping.values() or not value:
            raise InvalidArgument(
                f"group_by: {value} is not a grouping; use USAGE_GROUPING_DAY, _ORG, _KEY or _MODEL"
            )
        name = admin_pb2.UsageGrouping.Name(value)
        groups.append(name.removeprefix(_GROUPING_PREFIX).lower())
    return usage.Query(
        org_id=request.org_id,
        key_id=request.key_id,
        model=request.model,
        start=_time_from_wire(request, "start_time"),
        end=_time_from_wire(request, "end_time"),
        group_by=usage.validated_groups(groups),
    )


def _time_from_wire(message: admin_pb2.GetUsageRequest, field: str) -> datetime | None:
    if not message.HasField(field):  # type: ignore[arg-type]
        return None
    try:
        moment: datetime = getattr(message, field).ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument(
            f'{field} is not a valid timestamp (in JSON: "2030-01-01T00:00:00Z")'
        ) from None
    return moment


def usage_row_to_wire(row: usage.Row) -> admin_pb2.UsageRow:
    return to_message(
        admin_pb2.UsageRow,
        row,
        input_tokens=row.input,
        cached_tokens=row.cached,
        output_tokens=row.output,
        cost_usd=row.cost / pricing.MICRO_USD,
    )


def log_query_from_wire(request: admin_pb2.ListRequestLogsRequest) -> LogQuery:
    return LogQuery(
        org_id=request.org_id,
        key_id=request.key_id,
        status=request.status,
        route=request.route,
        start_time=_time_from_wire(request, "start_time"),  # type: ignore[arg-type]
        end_time=_time_from_wire(request, "end_time"),  # type: ignore[arg-type]
        page_size=request.page_size,
        page_token=request.page_token,
    )


def request_log_to_wire(entry: dict[str, Any]) -> admin_pb2.RequestLog:
    """An entry as the data plane logged it (prism.v1.RequestLog's JSON mapping)."""
    return json_format.ParseDict(entry, admin_pb2.RequestLog(), ignore_unknown_fields=True)
