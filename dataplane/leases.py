"""Keeping the concurrency slots of the requests in flight (Authorizer.Renew).

A slot the control plane grants is a lease (CheckResponse.slot_lease_ms): free once it
passes unrenewed, so that a data plane that dies holding slots, or a release (the final
Record) that is lost, frees them within a lease. This data plane holds the grant of each of
its requests with a slot from the moment Check allowed it until its final Record is sent
(records.py), and every third of a lease sends ONE Renew with all of them. A failed Renew
is logged (once: one call per interval) and changes nothing else; the next interval tries
again. A grant the control plane answers is no longer holding a slot is not sent again.
"""

import asyncio
import contextlib

from .authorizer import Authorizer

# Renewed this many times per lease: one lost or late Renew leaves the slot held.
_RENEWALS_PER_LEASE = 3


class Leases:
    def __init__(self, authorizer: Authorizer) -> None:
        self._authorizer = authorizer
        # Grant -> its slot's lease (ms).
        self._held: dict[str, int] = {}
        self._holding = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def hold(self, grant: str, lease_ms: int) -> None:
        self._held[grant] = lease_ms
        self._holding.set()

    def release(self, grant: str) -> None:
        self._held.pop(grant, None)

    async def open(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._renewing())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _renewing(self) -> None:
        while True:
            if not self._held:
                self._holding.clear()
                await self._holding.wait()
            await asyncio.sleep(min(self._held.values(), default=0) / 1000 / _RENEWALS_PER_LEASE)
            grants = list(self._held)
            if not grants:
                continue
            renewed = await self._authorizer.renew(grants)
            if renewed is None:
                continue
            for grant, held in zip(grants, renewed, strict=True):
                if not held:
                    self.release(grant)
