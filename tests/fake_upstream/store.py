"""The fake's state: every object in memory (file bytes on disk), OpenAI-shaped ids and
list pages.

Objects are kept as the JSON dicts the API returns, in dicts that preserve insertion
order, so creation order is list order without sorting on second-resolution timestamps.
"""

import secrets
import string
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ApiError, not_found

JSON = dict[str, Any]
# A stream event as the Assistants API names it, with the object it carries.
Event = tuple[str, JSON]

_ID_ALPHABET = string.ascii_letters + string.digits
# Run statuses that hold the thread: no new run or message until the run leaves them.
ACTIVE = ("queued", "in_progress", "requires_action")


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def now() -> int:
    return int(time.time())


@dataclass
class Run:
    obj: JSON
    # createThreadAndRun's own tool_resources, which apply to this run only.
    tool_resources: JSON
    # The work still to do: created when the run is queued, consumed by whoever looks
    # first (a poll settles it at once, a stream relays it event by event).
    pending: Iterator[Event] | None = None
    tool_calls: list[JSON] = field(default_factory=list)
    tool_outputs: list[JSON] | None = None

    def next_event(self) -> Event | None:
        if self.pending is None:
            return None
        event = next(self.pending, None)
        if event is None:
            self.pending = None
        return event

    def settle(self) -> None:
        while self.next_event() is not None:
            pass


@dataclass
class Store:
    data_dir: Path
    assistants: dict[str, JSON] = field(default_factory=dict)
    threads: dict[str, JSON] = field(default_factory=dict)
    messages: dict[str, dict[str, JSON]] = field(default_factory=dict)  # by thread id
    runs: dict[str, dict[str, Run]] = field(default_factory=dict)  # by thread id
    steps: dict[str, dict[str, JSON]] = field(default_factory=dict)  # by run id
    files: dict[str, JSON] = field(default_factory=dict)
    vector_stores: dict[str, JSON] = field(default_factory=dict)
    vector_store_files: dict[str, dict[str, JSON]] = field(default_factory=dict)  # by store id
    batches: dict[str, JSON] = field(default_factory=dict)
    batch_file_ids: dict[str, list[str]] = field(default_factory=dict)

    def file_path(self, file_id: str) -> Path:
        return self.data_dir / file_id

    def assistant(self, assistant_id: str) -> JSON:
        return _get(self.assistants, assistant_id, "assistant")

    def thread(self, thread_id: str) -> JSON:
        return _get(self.threads, thread_id, "thread")

    def message(self, thread_id: str, message_id: str) -> JSON:
        self.thread(thread_id)
        return _get(self.messages[thread_id], message_id, "message")

    def run(self, thread_id: str, run_id: str) -> Run:
        self.thread(thread_id)
        run = self.runs[thread_id].get(run_id)
        if run is None:
            raise not_found("run", run_id)
        return run

    def vector_store(self, vector_store_id: str) -> JSON:
        return _get(self.vector_stores, vector_store_id, "vector store")

    def active_run(self, thread_id: str) -> Run | None:
        return next(
            (run for run in self.runs[thread_id].values() if run.obj["status"] in ACTIVE),
            None,
        )


def _get(table: Mapping[str, JSON], object_id: str, kind: str) -> JSON:
    obj = table.get(object_id)
    if obj is None:
        raise not_found(kind, object_id)
    return obj


def list_page(
    items: Sequence[JSON],
    args: Mapping[str, str],
    *,
    default_limit: int = 20,
    max_limit: int = 100,
) -> JSON:
    """One page of `items` (oldest first) as OpenAI lists them: `order` desc by default,
    `after`/`before` cursors are object ids, `has_more` looks past the page's far end."""
    limit = _limit(args.get("limit"), default_limit, max_limit)
    order = args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(
            400,
            f"Invalid value for 'order': expected one of 'asc', 'desc', but got '{order}'.",
            param="order",
            code="invalid_value",
        )
    ordered = list(items) if order == "asc" else list(reversed(items))
    ids = [item["id"] for item in ordered]
    start, end = 0, len(ordered)
    if after := args.get("after"):
        start = _cursor(ids, after, "after") + 1
    if before := args.get("before"):
        end = _cursor(ids, before, "before")
    window = ordered[start:end]
    # Paging backwards with `before` takes the objects nearest the cursor.
    page = window[-limit:] if before and not after else window[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(window) > len(page),
    }


def _limit(raw: str | None, default: int, maximum: int) -> int:
    if raw is None:
        return default
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= maximum:
        raise ApiError(
            400,
            f"Invalid 'limit': expected an integer between 1 and {maximum}, but got '{raw}'.",
            param="limit",
            code="invalid_value",
        )
    return limit


def _cursor(ids: list[str], cursor: str, param: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        raise ApiError(
            400, f"Invalid '{param}': no object with id '{cursor}' in this list.", param=param
        ) from None
