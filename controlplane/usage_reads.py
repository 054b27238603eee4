"""Reading the usage hashes GetUsage reports on (controlplane.usage names their fields and
folds them into rows; the scripts that charge write them)."""

from collections.abc import Sequence

from controlplane.redis_access import RedisPart, unavailable_on_connection_error
from prism import redis_keys


class UsageReads(RedisPart):
    @unavailable_on_connection_error
    async def usage(
        self, org_ids: Sequence[str], days: Sequence[str]
    ) -> list[tuple[str, str, dict[str, str]]]:
        """(day, org id, usage hash) of every org and day asked, pipelined in batches."""
        pairs = [(day, org_id) for org_id in org_ids for day in days]
        found: list[tuple[str, str, dict[str, str]]] = []
        for start in range(0, len(pairs), 1000):
            batch = pairs[start : start + 1000]
            async with self._redis.pipeline(transaction=False) as pipe:
                for day, org_id in batch:
                    pipe.hgetall(redis_keys.usage(org_id, day))
                hashes = await pipe.execute()
            found += [
                (day, org_id, counted)
                for (day, org_id), counted in zip(batch, hashes, strict=True)
                if counted
            ]
        return found
