"""The admin operations on prices and usage: SetModelPrice, ListModelPrices, SetToolFees and
GetUsage, with their validation, over the stored prices and usage hashes."""

from controlplane import pricing, usage
from controlplane.accounts import Accounts
from controlplane.prices import Prices
from controlplane.pricing import Price, ToolFees
from controlplane.records import now
from controlplane.usage_reads import UsageReads


class Costs:
    def __init__(self, prices: Prices, usage_reads: UsageReads, accounts: Accounts) -> None:
        self._prices = prices
        self._usage_reads = usage_reads
        self._accounts = accounts

    async def set_model_price(
        self, model: str, input_usd: float, cached_input_usd: float, output_usd: float
    ) -> tuple[str, Price]:
        """Stores the price; every control plane prices runs first seen after this with it."""
        name, price = pricing.validated_price(model, input_usd, cached_input_usd, output_usd)
        await self._prices.set_model_price(name, price)
        return name, price

    async def prices(self) -> tuple[list[tuple[str, Price, bool]], ToolFees]:
        """Every priced model by name, with whether its price was set (not built in), and the
        tools' fees."""
        custom = await self._prices.model_prices()
        merged = {**pricing.BUILT_IN, **custom}
        listed = [(model, merged[model], model in custom) for model in sorted(merged)]
        return listed, await self._prices.tool_fees()

    async def set_tool_fees(
        self, file_search: float, vector_store: float, code_interpreter: float
    ) -> ToolFees:
        fees = pricing.validated_tool_fees(file_search, vector_store, code_interpreter)
        await self._prices.set_tool_fees(fees)
        return fees

    async def usage(self, query: usage.Query) -> tuple[list[usage.Row], usage.Row]:
        days = usage.days(query, now())
        org_ids = [query.org_id] if query.org_id else await self._accounts.org_ids()
        return usage.report(await self._usage_reads.usage(org_ids, days), query)
