"""List parameters as OpenAI defines them (`limit`, `order`, `after`, `before`) and the list
object answered (`data`, `first_id`, `last_id`, `has_more`)."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ApiError


@dataclass(frozen=True)
class PageRequest:
    limit: int
    # "asc" or "desc", by creation.
    order: str
    after: str | None
    before: str | None


def parse_page(
    args: Mapping[str, str], default_limit: int = 20, max_limit: int = 100
) -> PageRequest:
    raw_limit = args.get("limit")
    limit = default_limit if raw_limit is None else _integer(raw_limit)
    if limit is None or not 1 <= limit <= max_limit:
        raise ApiError(
            400,
            f"Invalid 'limit': integer must be between 1 and {max_limit}, but got '{raw_limit}'.",
            param="limit",
            code="invalid_value",
        )
    order = args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(
            400,
            f"Invalid value for 'order': expected one of 'asc', 'desc', but got '{order}'.",
            param="order",
            code="invalid_value",
        )
    return PageRequest(limit, order, args.get("after") or None, args.get("before") or None)


def _integer(raw: str) -> int | None:
    try:
        return int(raw)
    except ValueError:
        return None


def invalid_cursor(param: str, cursor: str) -> ApiError:
    """A cursor that is not an object of this list."""
    return ApiError(
        400,
        f"Invalid '{param}': no object with id '{cursor}' in this list.",
        param=param,
        code="invalid_value",
    )


def list_body(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
