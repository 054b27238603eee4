"""Charging runs nobody looked at again: the control plane's sweeper.

Every run created through the gateway is pending (lua/record.lua) until a response shows it
ended with usage, which charges it. Every PRISM_SWEEP_INTERVAL_SECONDS the sweeper takes
the runs pending for longer than PRISM_SWEEP_AFTER_SECONDS, claims each (SET NX PX, so at
most one sweeper acts on a run however many control planes run), fetches it upstream with
the org's own credential (else the gateway's), and charges a run that has ended through the
same path as a response (Authorizer.record, source `sweeper`), to the key that created it.
A run the upstream no longer knows (404), one that ended without usage, and one still not
ended after MAX_AGE are given up; any other failure is retried on a later sweep.
"""

import asyncio
import logging
import time

import httpx

from controlplane.authorizer import Authorizer, RecordInput
from controlplane.errors import DomainError, NotFound
from controlplane.store import Store
from prism import runs

log = logging.getLogger("prism.controlplane")

# A run not ended after this long (OpenAI's runs expire after 10 minutes) is given up.
MAX_AGE_SECONDS = 24 * 3600
# Runs taken per org per sweep, and fetched at once.
_PER_ORG = 100
_CONCURRENT_FETCHES = 8
_FETCH_TIMEOUT_SECONDS = 10.0
SOURCE = "sweeper"


class Sweeper:
    def __init__(
        self, authorizer: Authorizer, store: Store, interval_seconds: float, after_seconds: float
    ) -> None:
        self._authorizer = authorizer
        self._store = store
        self._interval = interval_seconds
        self._after_ms = after_seconds * 1000
        # A claim lasts one interval: the next sweep (here or elsewhere) may retry the run.
        self._claim_ms = max(int(interval_seconds * 1000), 1000)
        self._client = httpx.AsyncClient(timeout=_FETCH_TIMEOUT_SECONDS)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._client.aclose()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep()
            except Exception:
                # One failed sweep (Redis gone a moment) must not end the sweeping.
                log.exception("sweep failed; the next one is in %ss", self._interval)

    async def sweep(self) -> None:
        now_ms = time.time() * 1000
        due = await self._store.pending_runs(
            await self._store.org_ids(), now_ms - self._after_ms, _PER_ORG
        )
        limit = asyncio.Semaphore(_CONCURRENT_FETCHES)

        async def one(org_id: str, run_id: str, created_ms: float) -> None:
            async with limit:
                try:
                    if await self._store.claim_run(org_id, run_id, self._claim_ms):
                        await self._sweep_run(org_id, run_id, now_ms - created_ms)
                except DomainError as error:
                    log.warning(
                        "sweeper: run %s of org %s retried later: %s", run_id, org_id, error
                    )

        await asyncio.gather(*(one(*pending) for pending in due))

    async def _sweep_run(self, org_id: str, run_id: str, age_ms: float) -> None:
        key_id, thread_id = await self._store.run_origin(org_id, run_id)
        if age_ms > MAX_AGE_SECONDS * 1000 or not key_id or not thread_id:
            log.warning("sweeper: gave up run %s of org %s, never seen ended", run_id, org_id)
            await self._store.forget_pending(org_id, run_id)
            return
        try:
            upstream = await self._authorizer.upstream_of(org_id)
        except NotFound:
            await self._store.forget_pending(org_id, run_id)
            return
        try:
            response = await self._client.get(
                f"{upstream.base_url}/threads/{thread_id}/runs/{run_id}",
                headers={
                    "Authorization": f"Bearer {upstream.api_key}",
                    "OpenAI-Beta": "assistants=v2",
                },
            )
        except httpx.HTTPError as error:
            log.warning("sweeper: fetching run %s failed, retried later: %s", run_id, error)
            return
        if response.status_code == 404:
            await self._store.forget_pending(org_id, run_id)
            return
        if response.status_code != 200:
            log.warning("sweeper: upstream answered %s for run %s", response.status_code, run_id)
            return
        try:
            document = response.json()
        except ValueError:
            return
        ended = runs.ended_run(document)
        if ended is None:
            if runs.is_terminal(document):  # ended without usage: nothing to charge
                await self._store.forget_pending(org_id, run_id)
            return
        await self._authorizer.record(
            RecordInput(
                request_id=f"sweep_{run_id}",
                org_id=org_id,
                key_id=key_id,
                objects=(),
                deleted_ids=(),
                runs=[ended],
                finished=False,
            ),
            source=SOURCE,
        )
