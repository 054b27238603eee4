"""Concurrency slots' leases in Redis: a slot is held by a live holder, the data plane that
renews it (lua/renew.lua on limit_algorithms/slots.lua) while its request is in flight, so a
slot whose data plane died, or whose release (lua/record.lua) was lost, is free once its
lease passes unrenewed."""

from collections.abc import Sequence
from pathlib import Path

from controlplane import limiter
from controlplane.grants import Grant
from controlplane.limit_kinds import ALGORITHMS_LUA
from controlplane.redis_access import RedisPart, unavailable_on_connection_error
from prism.redis_client import AsyncRedis, run_scripts

_RENEW = ALGORITHMS_LUA + (Path(__file__).with_name("lua") / "renew.lua").read_text()


class SlotLeases(RedisPart):
    def __init__(self, client: AsyncRedis, lease_ms: int) -> None:
        super().__init__(client)
        self._renew = client.register_script(_RENEW)
        self.lease_ms = lease_ms

    @unavailable_on_connection_error
    async def renew(self, grants: Sequence[Grant]) -> list[bool]:
        """Renews the slots of each grant's request, in one pipelined round trip (a script
        call per request: each touches its own org's keys only); per grant, whether its
        request still held a slot. A slot no longer held is not taken again."""
        if not grants:
            return []
        answers = await run_scripts(
            self._redis,
            self._renew,
            [
                (limiter.slot_sets(grant.org_id, grant.key_id), [grant.request_id, self.lease_ms])
                for grant in grants
            ],
        )
        return [bool(answer) for answer in answers]
