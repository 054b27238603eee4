"""The request log, read: Admin ListRequestLogs and GetRequestLog, and the rules of an org's
request logging.

The data plane writes the log (dataplane/log_writer.py): a Redis Stream whose entries carry
`org`, `key`, `status` and `route` fields for filtering and the entry's JSON (prism.v1.
RequestLog's JSON mapping), plus a key per request id naming its stream entry. Stream ids
are the times the entries were written (when each request ended), so the newest come first
by reading the stream backwards, and a time range selects by when a request ended.

A listing reads the stream in batches from its page token's position and keeps the entries
its filters match. A page reads at most MAX_SCANNED entries: when that budget runs out
before the page is full, the page is returned short, with a token to continue, so a filter
matching little of a long log never makes one call slow.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controlplane import paging
from controlplane.errors import InvalidArgument, NotFound
from controlplane.records import BODY_LOGGING, RequestLogging
from controlplane.redis_access import RedisPart, unavailable_on_connection_error
from prism import redis_keys

# The most of a body BODY_LOGGING_FULL may keep per request or response.
MAX_BODY_BYTES = 1024 * 1024
# Stream entries read per round trip, and at most per page.
_BATCH = 200
MAX_SCANNED = 10_000
_STREAM_ID = re.compile(r"\d+-\d+")


def validated_request_logging(bodies: str, max_body_bytes: int) -> RequestLogging:
    if bodies not in BODY_LOGGING:
        raise InvalidArgument(f"request_logging.bodies must be one of {', '.join(BODY_LOGGING)}")
    if not 0 <= max_body_bytes <= MAX_BODY_BYTES:
        raise InvalidArgument(
            f"request_logging.max_body_bytes {max_body_bytes} is out of range: use 0 (the "
            f"default, 16384) to {MAX_BODY_BYTES}"
        )
    return RequestLogging(bodies, max_body_bytes)


@dataclass(frozen=True)
class LogQuery:
    """ListRequestLogs' filters ("" and 0 match all) and page."""

    org_id: str = ""
    key_id: str = ""
    status: int = 0
    route: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None
    page_size: int = 0
    page_token: str = ""

    def listing(self) -> str:
        """Names the listing a page token belongs to: the same filters."""
        filters = [
            self.org_id,
            self.key_id,
            str(self.status),
            self.route,
            _milliseconds(self.start_time),
            _milliseconds(self.end_time),
        ]
        return "request-logs:" + hashlib.sha256("\n".join(filters).encode()).hexdigest()[:16]


class RequestLogs(RedisPart):
    """The request log the data plane writes (dataplane/log_writer.py), read for Admin."""

    async def find(self, query: LogQuery) -> tuple[list[dict[str, Any]], str]:
        """Entries (JSON) matching the query, newest first, and the next page's token."""
        size = paging.page_size(query.page_size)
        if query.status < 0:
            raise InvalidArgument(f"status {query.status} is not an HTTP status (or 0 for all)")
        if query.start_time and query.end_time and query.start_time > query.end_time:
            raise InvalidArgument("start_time is after end_time")
        listing = query.listing()
        after = paging.position_after(query.page_token, listing)
        if after and not _STREAM_ID.fullmatch(after):
            raise InvalidArgument(
                "page_token is not one this server issued; pass next_page_token unchanged"
            )
        upper = "(" + after if after else _milliseconds(query.end_time) or "+"
        lower = _milliseconds(query.start_time) or "-"
        wanted = {
            "org": query.org_id,
            "key": query.key_id,
            "status": str(query.status) if query.status else "",
            "route": query.route,
        }
        found: list[dict[str, Any]] = []
        last_found = ""
        scanned = 0
        while scanned < MAX_SCANNED:
            rows = await self._read(upper, lower, min(_BATCH, MAX_SCANNED - scanned))
            if not rows:
                return found, ""
            for stream_id, fields in rows:
                scanned += 1
                if any(value and fields.get(name) != value for name, value in wanted.items()):
                    continue
                if len(found) == size:
                    # A further match exists: the page ends at the last one kept.
                    return found, paging.next_token(listing, last_found)
                found.append(json.loads(fields["entry"]))
                last_found = stream_id
            upper = "(" + rows[-1][0]
        # The scan budget ran out: continue from the last entry read.
        return found, paging.next_token(listing, upper[1:])

    @unavailable_on_connection_error
    async def get(self, request_id: str) -> dict[str, Any]:
        if not request_id:
            raise InvalidArgument("request_id is required")
        stream_id = await self._redis.hget(redis_keys.REQUEST_LOG_INDEX, request_id)
        rows = (
            await self._redis.xrange(redis_keys.REQUEST_LOG, stream_id, stream_id)
            if stream_id
            else []
        )
        if not rows:
            raise NotFound(
                f"no request log entry for {request_id!r}: it was never logged or has aged out "
                "of the log"
            )
        return json.loads(rows[0][1]["entry"])

    @unavailable_on_connection_error
    async def _read(self, upper: str, lower: str, count: int) -> list[tuple[str, dict[str, str]]]:
        return await self._redis.xrevrange(redis_keys.REQUEST_LOG, upper, lower, count)


def _milliseconds(moment: datetime | None) -> str:
    """A time as a stream id's milliseconds; "" for none."""
    return "" if moment is None else str(int(moment.timestamp() * 1000))
