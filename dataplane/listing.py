"""Listings filtered to the caller's org: `GET /v1/assistants`, `/v1/files`, `/v1/vector_stores`.

Every org shares one upstream account, so the upstream's listing holds every org's objects.
The gateway walks it instead of forwarding the client's request: page after page in the
client's order and cursor direction, each page filtered with one FilterOwned, until it holds
`limit + 1` of the org's objects (one more than it returns, to know `has_more`) or the
upstream has no more. The answer is built from the org's objects alone, so `first_id`,
`last_id` and `has_more` are right however many other orgs' objects lie between them.

A cursor (`after`, `before`) the org does not own gets the same answer whether it is another
org's object or no object at all, so a listing reveals nothing about other orgs' ids.
"""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from quart import Response

from prism.v1 import authorizer_pb2

from .asgi import ProxyRequest
from .errors import INVALID_REQUEST, SERVER_ERROR, GatewayError
from .headers import relayed_response_headers
from .upstream import Upstream, api_path

JSON = dict[str, Any]
FilterOwned = Callable[[str, list[str]], Awaitable[list[str]]]

# The smallest upstream page asked for: the largest the Assistants API allows. A walk past
# many foreign objects then takes as few round trips (and FilterOwned calls) as it can.
_UPSTREAM_PAGE = 100


@dataclass(frozen=True)
class _Listing:
    # OpenAI's default and largest `limit`, the largest the upstream takes too.
    default_limit: int
    max_limit: int


# By route, as the route table names them (`Operation.name`).
_LISTINGS = {
    "GET /v1/assistants": _Listing(20, 100),
    "GET /v1/files": _Listing(10_000, 10_000),
    "GET /v1/vector_stores": _Listing(20, 100),
}
OWNED_LISTINGS = frozenset(_LISTINGS)
# The query parameters the walk sets itself on every upstream page; any other passes through.
_WALK_PARAMETERS = frozenset({"limit", "after", "before"})


async def owned_listing(
    request: ProxyRequest,
    target: authorizer_pb2.Upstream,
    grant: str,
    upstream: Upstream,
    filter_owned: FilterOwned,
) -> Response:
    """The org's objects of the listing `request` asks for, as one OpenAI list page; grant is
    the request's, which FilterOwned presents for its org."""
    listing = _LISTINGS[f"GET {request.path}"]
    args = request.args
    limit = _limit(args.get("limit"), listing)
    # An empty cursor is no cursor, as the upstream reads it.
    after = args.get("after") or None
    before = args.get("before") or None
    # Paging back (`before` alone) takes the objects nearest the cursor, so the walk goes
    # away from it: each page further back is put in front of what was found so far.
    backwards = before is not None and after is None
    kept = [(name, value) for name, value in args.items(multi=True) if name not in _WALK_PARAMETERS]
    # Asking for more than needed costs nothing extra per page and can spare pages.
    page_size = min(listing.max_limit, max(_UPSTREAM_PAGE, limit + 1))
    # Checked with the first page's FilterOwned, before anything of that page is used.
    unchecked = _cursors(after, before)

    owned: list[JSON] = []
    # The first page's headers go to the client, the upstream's request id among them.
    relayed: list[tuple[bytes, bytes]] = []
    first = True
    while True:
        query = [*kept, ("limit", str(page_size)), *_cursors(after, before)]
        status, headers, body = await upstream.call(
            request, target, "GET", api_path(request), query
        )
        if status != 200:
            if not first:
                # Passed through, a later page's error could name a foreign object (the
                # cursor the walk took from the page before); the SDK retries a 502.
                raise _walk_failed(f"answered {status}")
            if unchecked:
                _require_owned(unchecked, await filter_owned(grant, [c for _, c in unchecked]))
            # The client's own request failed (a bad `order`, an unknown cursor of its own).
            return Response(
                body, status=status, headers=relayed_response_headers(headers, streamed=False)
            )
        data, has_more = _page(body)
        far_end = (data[0] if backwards else data[-1])["id"] if data else None
        if not first and far_end == (before if backwards else after):
            # The upstream ignored the walk's cursor (OpenAI's files listing has no `before`)
            # and sent the page before again: walking on would never end.
            break
        if first:
            relayed, first = headers, False
        asked = [cursor for _, cursor in unchecked] + [obj["id"] for obj in data]
        mine = set(await filter_owned(grant, asked)) if asked else set()
        _require_owned(unchecked, mine)
        unchecked = []
        found = [obj for obj in data if obj["id"] in mine]
        owned = found + owned if backwards else owned + found
        if far_end is None or not has_more or len(owned) > limit:
            break
        if backwards:
            before = far_end
        else:
            after = far_end

    page = owned[-limit:] if backwards else owned[:limit]
    listed = {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(owned) > limit,
    }
    return Response(
        json.dumps(listed),
        status=200,
        headers=relayed_response_headers(relayed, streamed=False),
        content_type="application/json",
    )


def _cursors(after: str | None, before: str | None) -> list[tuple[str, str]]:
    return [(name, cursor) for name, cursor in (("after", after), ("before", before)) if cursor]


def _limit(raw: str | None, listing: _Listing) -> int:
    # Validated here, since the upstream sees the walk's page size, never the client's limit.
    if raw is None:
        return listing.default_limit
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= listing.max_limit:
        return int(raw)
    raise GatewayError(
        400,
        f"Invalid 'limit': expected an integer between 1 and {listing.max_limit}, but got '{raw}'.",
        INVALID_REQUEST,
        "invalid_value",
        "limit",
    )


def _require_owned(cursors: list[tuple[str, str]], owned: list[str] | set[str]) -> None:
    """400 for a cursor the org does not own, worded as the upstream words an unknown one."""
    for name, cursor in cursors:
        if cursor not in owned:
            raise GatewayError(
                400,
                f"Invalid '{name}': no object with id '{cursor}' in this list.",
                INVALID_REQUEST,
                code="invalid_value",
                param=name,
            )


def _page(body: bytes) -> tuple[list[JSON], bool]:
    """An upstream list page's objects and `has_more`; 502 when it is no such page."""
    try:
        document = json.loads(body)
    except ValueError:
        raise _walk_failed("sent a list that is not JSON") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list) or not all(
        isinstance(obj, dict) and isinstance(obj.get("id"), str) for obj in data
    ):
        raise _walk_failed("sent a list without objects")
    return data, document.get("has_more") is True


def _walk_failed(what: str) -> GatewayError:
    return GatewayError(
        502,
        f"The upstream API {what} while the gateway was reading a listing.",
        SERVER_ERROR,
        "upstream_bad_listing",
    )
