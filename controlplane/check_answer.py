"""What lua/verify.lua and lua/check.lua answer about one request, as typed values: the
Store reads the scripts' JSON into these, so nothing past it handles raw answers."""

import json
from dataclasses import dataclass
from enum import Enum


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
    # NOT_OWNED: of the refs; BUDGET: of the budgets.
    index: int = 0
    # MODEL
    model: str = ""
    # BUDGET
    spent_micro_usd: int = 0
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
