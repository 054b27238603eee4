"""Many requests at once across data planes, for exact admission under a limit."""

import asyncio

import openai

from tests.conftest import DataPlane


def burst_statuses(gateways: list[DataPlane], secret: str, attempts: int) -> list[int]:
    """`attempts` file listings at once, taking turns over the gateways: 200 or 429 each."""

    async def burst() -> list[int]:
        clients = [
            openai.AsyncOpenAI(base_url=gateway.url, api_key=secret, max_retries=0)
            for gateway in gateways
        ]

        async def one(i: int) -> int:
            try:
                await clients[i % len(clients)].files.list()
                return 200
            except openai.RateLimitError:
                return 429

        try:
            return await asyncio.gather(*(one(i) for i in range(attempts)))
        finally:
            for sdk in clients:
                await sdk.close()

    return asyncio.run(burst())
