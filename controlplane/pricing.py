"""What runs and tool calls cost: the price table, the tools' fees and the arithmetic.

Prices are USD per million tokens, which is the same number as micro-USD per token, so a
run's cost in micro-USD is its tokens times the prices, exact in Decimal and rounded (half
up) once, at the end. The built-in table holds OpenAI's published prices; SetModelPrice
stores overrides in Redis (controlplane.prices), read on every charge, so every control plane prices
a run first seen after an override with it.
"""

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from controlplane.errors import InvalidArgument
from prism.money import MICRO_USD

# A dated snapshot's suffix: `-2024-08-06` or `-0125`.
_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4})$")
# Tool fees are charged under these model names in usage.
FILE_SEARCH = "file_search"
CODE_INTERPRETER = "code_interpreter"
VECTOR_STORE_STORAGE = "vector_store_storage"
# An org's first GB of vector-store storage is free. OpenAI bills decimal GB (10^9 bytes),
# as it counts `usage_bytes`.
FREE_STORAGE_BYTES = 1_000_000_000
BYTES_PER_GB = 1_000_000_000


@dataclass(frozen=True)
class Price:
    """USD per million input, cached-input and output tokens."""

    input: Decimal
    cached_input: Decimal
    output: Decimal

    def to_json(self) -> dict[str, str]:
        return {
            "input": str(self.input),
            "cached": str(self.cached_input),
            "output": str(self.output),
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> "Price":
        return cls(Decimal(data["input"]), Decimal(data["cached"]), Decimal(data["output"]))


@dataclass(frozen=True)
class ToolFees:
    file_search_per_thousand_calls: Decimal
    # Per GB-day past the first GB.
    vector_store_per_gb_day: Decimal
    code_interpreter_per_session: Decimal

    def to_json(self) -> dict[str, str]:
        return {
            "file_search": str(self.file_search_per_thousand_calls),
            "vector_store": str(self.vector_store_per_gb_day),
            "code_interpreter": str(self.code_interpreter_per_session),
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> "ToolFees":
        return cls(
            Decimal(data["file_search"]),
            Decimal(data["vector_store"]),
            Decimal(data["code_interpreter"]),
        )


def _price(input_: str, cached: str, output: str) -> Price:
    return Price(Decimal(input_), Decimal(cached), Decimal(output))


# OpenAI's published prices for the models the Assistants API accepts. Models without a
# prompt-cache discount price cached tokens as input.
BUILT_IN: dict[str, Price] = {
    "gpt-4o": _price("2.50", "1.25", "10.00"),
    "gpt-4o-mini": _price("0.15", "0.075", "0.60"),
    "gpt-4.1": _price("2.00", "0.50", "8.00"),
    "gpt-4.1-mini": _price("0.40", "0.10", "1.60"),
    "gpt-4.1-nano": _price("0.10", "0.025", "0.40"),
    "gpt-4-turbo": _price("10.00", "10.00", "30.00"),
    "gpt-4": _price("30.00", "30.00", "60.00"),
    "gpt-3.5-turbo": _price("0.50", "0.50", "1.50"),
    "o1": _price("15.00", "7.50", "60.00"),
    "o3-mini": _price("1.10", "0.55", "4.40"),
    "o3": _price("2.00", "0.50", "8.00"),
    "o4-mini": _price("1.10", "0.275", "4.40"),
}
BUILT_IN_TOOL_FEES = ToolFees(Decimal("2.50"), Decimal("0.10"), Decimal("0.03"))


def family(model: str) -> str:
    """The model a dated snapshot belongs to: `gpt-4o-2024-08-06` -> `gpt-4o`."""
    return _SNAPSHOT.sub("", model)


def price_of(model: str, overrides: dict[str, Price]) -> Price | None:
    """The model's own price (set, else built in), else its family's; None when unpriced."""
    for name in dict.fromkeys((model, family(model))):
        found = overrides.get(name) or BUILT_IN.get(name)
        if found is not None:
            return found
    return None


def run_cost(price: Price | None, prompt: int, cached: int, completion: int) -> int:
    """A run's cost in micro-USD; 0 without a price. Cached tokens are part of the prompt."""
    if price is None:
        return 0
    cached = min(max(cached, 0), max(prompt, 0))
    exact = (
        (max(prompt, 0) - cached) * price.input
        + cached * price.cached_input
        + max(completion, 0) * price.output
    )
    return _micros(exact)


def file_search_cost(fees: ToolFees, calls: int) -> int:
    return _micros(fees.file_search_per_thousand_calls * MICRO_USD * max(calls, 0) / 1000)


def code_interpreter_cost(fees: ToolFees) -> int:
    return _micros(fees.code_interpreter_per_session * MICRO_USD)


def storage_cost(fees: ToolFees, usage_bytes: int) -> int:
    """A day of an org's vector-store storage in micro-USD: its GB past the first, at the
    per-GB-day fee."""
    billed = max(usage_bytes - FREE_STORAGE_BYTES, 0)
    return _micros(fees.vector_store_per_gb_day * MICRO_USD * billed / BYTES_PER_GB)


def _micros(exact: Decimal) -> int:
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def validated_price(
    model: str, input_usd: float, cached_input_usd: float, output_usd: float
) -> tuple[str, Price]:
    """SetModelPrice's arguments checked: a model name and three finite, non-negative
    prices."""
    name = model.strip()
    if not name:
        raise InvalidArgument("model is required: the exact model name the price applies to")
    price = Price(
        _amount("input_usd_per_million", input_usd),
        _amount("cached_input_usd_per_million", cached_input_usd),
        _amount("output_usd_per_million", output_usd),
    )
    return name, price


def validated_tool_fees(
    file_search: float, vector_store: float, code_interpreter: float
) -> ToolFees:
    return ToolFees(
        _amount("file_search_usd_per_thousand_calls", file_search),
        _amount("vector_store_usd_per_gb_day", vector_store),
        _amount("code_interpreter_usd_per_session", code_interpreter),
    )


def _amount(name: str, usd: float) -> Decimal:
    if not math.isfinite(usd) or usd < 0:
        raise InvalidArgument(f"{name} must be a finite amount of USD, 0 or more; got {usd}")
    # repr is the shortest decimal that reads back as the same double: 2.5, not 2.4999….
    return Decimal(repr(usd))


@dataclass(frozen=True)
class RunCharge:
    """What a run was charged, once, to the key `key_id`."""

    run_id: str
    model: str
    cost_micros: int
    priced: bool
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    key_id: str
    # Prompt and completion, for tokens-per-minute limits.
    total_tokens: int = 0


@dataclass(frozen=True)
class StepCharge:
    """A run step's tool calls, charged once, to the key `key_id`."""

    step_id: str
    thread_id: str
    file_search_calls: int
    file_search_micros: int
    code_interpreter: bool
    code_interpreter_micros: int
    key_id: str
