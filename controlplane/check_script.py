"""What lua/verify.lua and lua/check.lua are asked about one request and what they answer,
as typed values: decisions.py turns these into the scripts' JSON and back, so nothing past it
handles raw arguments or answers."""

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class UsageArgs:
    """Who an allowed request counts for in the usage hash, and under which model: `model`,
    else the model remembered for `model_object` (a run's assistant, or the run tool
    outputs go to), else ''."""

    key_id: str
    model: str
    model_object: str


@dataclass(frozen=True)
class CheckArgs:
    """The scripts' ARGV object, less the budgets, counters and reservation check.lua also
    gets."""

    # SHA-1 of the key's and org's records the caller decided with.
    key_digest: str
    org_digest: str
    # The member a concurrency slot is held by.
    request_id: str
    # When model_object is set: the model the caller checked for it ("" at first).
    model: str = ""
    # (id, kind) of each object the org must own.
    refs: tuple[tuple[str, str], ...] = ()
    # An assistant or run id whose remembered model must be `model`; "" for none.
    model_object: str = ""
    # check.lua only.
    usage: UsageArgs | None = None

    def to_script(self) -> dict[str, Any]:
        # A shallow copy of the fields (a dataclass without slots keeps exactly them in its
        # __dict__): dataclasses.asdict deep-copies each, a tenth of a Check's CPU.
        spec = dict(vars(self))
        if self.usage is not None:
            spec["usage"] = dict(vars(self.usage))
        return spec


class CheckOutcome(Enum):
    # The key or its org no longer exists.
    GONE = "gone"
    # A record changed since the caller decided with it; the answer has both as stored now.
    STALE = "stale"
    # The org does not own the object at `index` of the request's refs.
    NOT_OWNED = "not_owned"
    # The model of the request's model_object is not the one the caller checked ("" when
    # unknown).
    MODEL = "model"
    # The budget at `index` is spent.
    BUDGET = "budget"
    # The budget at `index` is not spent, but cannot hold the request's reservation besides
    # what is spent and reserved.
    RESERVATION = "reservation"
    # An enforced limit refused the request; no counter moved.
    LIMITED = "limited"
    OK = "ok"


@dataclass(frozen=True)
class CounterAnswer:
    """One counter's answer (times in ms)."""

    allowed: bool
    remaining: int
    reset_ms: int
    retry_ms: int


@dataclass(frozen=True)
class CheckAnswer:
    outcome: CheckOutcome
    # STALE: the key's and the org's records (JSON).
    key_json: str = ""
    org_json: str = ""
    # NOT_OWNED: of the refs; BUDGET and RESERVATION: of the budgets.
    index: int = 0
    # MODEL
    model: str = ""
    # BUDGET and RESERVATION
    spent_micro_usd: int = 0
    # RESERVATION: what the budget's other reservations hold.
    reserved_micro_usd: int = 0
    # LIMITED and OK: one per counter given, in order.
    counters: tuple[CounterAnswer, ...] = ()

    @classmethod
    def from_script(cls, text: str) -> "CheckAnswer":
        answer = json.loads(text)
        return cls(
            CheckOutcome(answer["outcome"]),
            answer.get("key", ""),
            answer.get("org", ""),
            answer.get("index", 0),
            answer.get("model", ""),
            int(answer.get("spent", 0)),
            int(answer.get("reserved", 0)),
            # cjson encodes an empty Lua table as an object.
            tuple(_counter_answer(counter) for counter in answer.get("counters") or []),
        )


def _counter_answer(answer: dict[str, float | bool]) -> CounterAnswer:
    return CounterAnswer(
        bool(answer["allowed"]),
        int(answer["remaining"]),
        max(round(answer["reset"]), 0),
        max(round(answer["retry"]), 1),
    )
