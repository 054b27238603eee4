"""The prices SetModelPrice and SetToolFees stored in Redis, and how a stored one reads back
(pricing.py holds the built-in table and the arithmetic)."""

import json

from controlplane.pricing import BUILT_IN_TOOL_FEES, Price, ToolFees
from controlplane.redis_access import RedisPart, unavailable_on_connection_error
from prism import redis_keys


class Prices(RedisPart):
    @unavailable_on_connection_error
    async def set_model_price(self, model: str, price: Price) -> None:
        await self._redis.hset(redis_keys.MODEL_PRICES, model, json.dumps(price.to_json()))

    @unavailable_on_connection_error
    async def model_prices(self) -> dict[str, Price]:
        """The prices SetModelPrice set, by model."""
        stored = await self._redis.hgetall(redis_keys.MODEL_PRICES)
        return {model: stored_price(raw) for model, raw in stored.items()}

    @unavailable_on_connection_error
    async def set_tool_fees(self, fees: ToolFees) -> None:
        await self._redis.set(redis_keys.TOOL_FEES, json.dumps(fees.to_json()))

    @unavailable_on_connection_error
    async def tool_fees(self) -> ToolFees:
        return stored_tool_fees(await self._redis.get(redis_keys.TOOL_FEES))


def stored_price(raw: str) -> Price:
    return Price.from_json(json.loads(raw))


def stored_tool_fees(raw: str | None) -> ToolFees:
    """The fees SetToolFees set, or the built-in ones when it never was."""
    return ToolFees.from_json(json.loads(raw)) if raw else BUILT_IN_TOOL_FEES
