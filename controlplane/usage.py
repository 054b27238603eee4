"""Usage accounting: what each org, key and model used and spent per UTC day, and the
reports GetUsage makes of it.

Counters live in one Redis hash per org and day (prism.redis_keys.usage), one field per
key, model and counter, so the scripts that count (a request in lua/check.lua, a run's
charge in lua/record.lua) touch one key of the org's slot. This module names the fields
(the scripts are passed FIELD_SEPARATOR to join theirs) and folds them into rows.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from controlplane.errors import InvalidArgument

# Every counter of a key and model on a day. `input` counts prompt tokens, cached included;
# `cost` is in micro-USD.
COUNTERS = ("requests", "input", "cached", "output", "runs", "cost")
# Between the parts of a field name. Key ids and counters cannot hold it; a model name
# may, which is why the model is what lies between the first and the last.
FIELD_SEPARATOR = "\n"
MAX_DAYS = 366
DEFAULT_DAYS = 30
# Usage hashes are kept this long, so a GetUsage over the longest range finds them all.
RETENTION_SECONDS = (MAX_DAYS + 31) * 86_400
GROUPINGS = ("day", "org", "key", "model")


def field_name(key_id: str, model: str, counter: str) -> str:
    return f"{key_id}{FIELD_SEPARATOR}{model}{FIELD_SEPARATOR}{counter}"


def day_of(moment: datetime) -> str:
    # `2026-11-24`: the ISO date, which strftime("%Y-%m-%d") spells more slowly.
    return moment.astimezone(UTC).date().isoformat()


@dataclass(frozen=True)
class Query:
    org_id: str
    key_id: str
    model: str
    start: datetime | None
    end: datetime | None
    group_by: tuple[str, ...]


@dataclass
class Row:
    day: str = ""
    org_id: str = ""
    key_id: str = ""
    model: str = ""
    requests: int = 0
    input: int = 0
    cached: int = 0
    output: int = 0
    runs: int = 0
    cost: int = 0


def days(query: Query, now: datetime) -> list[str]:
    """The UTC days the query covers, oldest first; InvalidArgument for a range that ends
    before it starts or spans more than MAX_DAYS."""
    last = (query.end or now).astimezone(UTC).date()
    first = (
        query.start.astimezone(UTC).date()
        if query.start is not None
        else last - timedelta(days=DEFAULT_DAYS - 1)
    )
    if last < first:
        raise InvalidArgument(
            f"end_time ({last}) is before start_time ({first}); swap them or leave end_time unset"
        )
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise InvalidArgument(
            f"the range covers {count} days ({first} to {last}); ask for at most {MAX_DAYS}"
        )
    return [(first + timedelta(days=i)).isoformat() for i in range(count)]


def report(
    counted: Iterable[tuple[str, str, dict[str, str]]], query: Query
) -> tuple[list[Row], Row]:
    """The query's rows, ordered by day, org, key, model, and their total, from each
    (day, org, usage hash) read."""
    grouped: dict[tuple[str, str, str, str], Row] = {}
    total = Row()
    for day, org_id, hash_fields in counted:
        for name, value in hash_fields.items():
            key_id, _, rest = name.partition(FIELD_SEPARATOR)
            model, _, counter = rest.rpartition(FIELD_SEPARATOR)
            if counter not in COUNTERS:
                continue
            if (query.key_id and key_id != query.key_id) or (query.model and model != query.model):
                continue
            group = (
                day if "day" in query.group_by else "",
                org_id if "org" in query.group_by else "",
                key_id if "key" in query.group_by else "",
                model if "model" in query.group_by else "",
            )
            row = grouped.get(group)
            if row is None:
                row = grouped[group] = Row(*group)
            amount = int(value)
            setattr(row, counter, getattr(row, counter) + amount)
            setattr(total, counter, getattr(total, counter) + amount)
    rows = [grouped[group] for group in sorted(grouped)] if query.group_by else []
    return rows, total


def validated_groups(groups: Sequence[str]) -> tuple[str, ...]:
    unknown = [group for group in groups if group not in GROUPINGS]
    if unknown:
        raise InvalidArgument(
            f"group_by: cannot group by {', '.join(unknown)}; use {', '.join(GROUPINGS)}"
        )
    return tuple(dict.fromkeys(groups))
