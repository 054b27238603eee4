"""Charging runs nobody looked at again: the control plane's sweeper.

Every run created through the gateway is pending (lua/record.lua) until a response shows it
ended with usage, which charges it. Every PRISM_SWEEP_INTERVAL_SECONDS the sweeper takes
the runs pending for longer than PRISM_SWEEP_AFTER_SECONDS, claims each (SET NX PX, so at
most one sweeper acts on a run however many control planes run), fetches it upstream with
the org's own credential (else the gateway's), and charges a run that has ended through the
same path as a response (Authorizer.record, source `sweeper`), to the key that created it.
A run the upstream no longer knows (404), one that ended without usage, and one still not
ended after MAX_AGE are given up; any other failure is retried on a later sweep.

After each sweep, StorageFees charges each org's vector-store storage once per UTC day
(PRISM_CHARGE_VECTOR_STORAGE; see its docstring).
"""

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import httpx

from controlplane import metrics, pricing, usage
from controlplane.accounts import Accounts
from controlplane.authorizer import Authorizer
from controlplane.check_request import Upstream
from controlplane.errors import DomainError, NotFound
from controlplane.prices import Prices
from controlplane.record_request import RecordInput
from controlplane.records import now
from controlplane.run_queue import RunQueue
from controlplane.storage_fees import StorageFeeClaims
from prism import runs

log = logging.getLogger("prism.controlplane")

# A run not ended after this long (OpenAI's runs expire after 10 minutes) is given up.
MAX_AGE_SECONDS = 24 * 3600
# Runs taken per org per sweep, and fetched at once.
_PER_ORG = 100
_CONCURRENT_FETCHES = 8
_FETCH_TIMEOUT_SECONDS = 10.0
SOURCE = "sweeper"
# A day's storage claim outlives any org's fetches; it only matters when its control plane
# stops mid-charge (a failure releases it at once), and the day is then retried after it.
_STORAGE_CLAIM_MS = 10 * 60 * 1000
# Orgs whose storage is claimed with one pipelined round trip.
_STORAGE_BATCH = 100


class Sweeper:
    def __init__(
        self,
        authorizer: Authorizer,
        accounts: Accounts,
        queue: RunQueue,
        prices: Prices,
        fee_claims: StorageFeeClaims,
        interval_seconds: float,
        after_seconds: float,
        *,
        charge_storage: bool,
    ) -> None:
        self._authorizer = authorizer
        self._accounts = accounts
        self._queue = queue
        self._interval = interval_seconds
        self._after_ms = after_seconds * 1000
        # A claim lasts one interval: the next sweep (here or elsewhere) may retry the run.
        self._claim_ms = max(int(interval_seconds * 1000), 1000)
        self._client = httpx.AsyncClient(timeout=_FETCH_TIMEOUT_SECONDS)
        self._storage = (
            StorageFees(authorizer, accounts, prices, fee_claims, self._client)
            if charge_storage
            else None
        )
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
            if self._storage is not None:
                try:
                    await self._storage.charge_due()
                except Exception:
                    log.exception("charging storage failed; tried again in %ss", self._interval)

    async def sweep(self) -> None:
        now_ms = time.time() * 1000
        due = await self._queue.pending_runs(
            await self._accounts.org_ids(), now_ms - self._after_ms, _PER_ORG
        )
        limit = asyncio.Semaphore(_CONCURRENT_FETCHES)
        # An org's record is read and its credential unsealed once per sweep, however many of
        # its runs are due; its runs share the one read.
        upstreams: dict[str, asyncio.Future[Upstream]] = {}

        def upstream_of(org_id: str) -> asyncio.Future[Upstream]:
            if org_id not in upstreams:
                upstreams[org_id] = asyncio.ensure_future(self._authorizer.upstream_of(org_id))
            return upstreams[org_id]

        async def one(org_id: str, run_id: str, created_ms: float) -> None:
            async with limit:
                try:
                    if await self._queue.claim_run(org_id, run_id, self._claim_ms):
                        await self._sweep_run(org_id, run_id, now_ms - created_ms, upstream_of)
                except DomainError as error:
                    log.warning(
                        "sweeper: run %s of org %s retried later: %s", run_id, org_id, error
                    )

        await asyncio.gather(*(one(*pending) for pending in due))

    async def _sweep_run(
        self,
        org_id: str,
        run_id: str,
        age_ms: float,
        upstream_of: Callable[[str], Awaitable[Upstream]],
    ) -> None:
        key_id, thread_id = await self._queue.run_origin(org_id, run_id)
        if age_ms > MAX_AGE_SECONDS * 1000 or not key_id or not thread_id:
            log.warning("sweeper: gave up run %s of org %s, never seen ended", run_id, org_id)
            await self._queue.forget_pending(org_id, run_id)
            return
        try:
            upstream = await upstream_of(org_id)
        except NotFound:
            await self._queue.forget_pending(org_id, run_id)
            return
        ended = await self._fetch_ended(org_id, run_id, thread_id, upstream)
        if ended is None:
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

    async def _fetch_ended(
        self, org_id: str, run_id: str, thread_id: str, upstream: Upstream
    ) -> runs.EndedRun | None:
        """The run as the upstream has it, when it ended with usage. One the upstream no
        longer knows, or that ended without usage, leaves the queue; any other failure
        leaves it for a later sweep."""
        try:
            response = await _get(self._client, upstream, f"/threads/{thread_id}/runs/{run_id}")
        except httpx.HTTPError as error:
            log.warning("sweeper: fetching run %s failed, retried later: %s", run_id, error)
            return None
        if response.status_code == 404:
            await self._queue.forget_pending(org_id, run_id)
            return None
        if response.status_code != 200:
            log.warning("sweeper: upstream answered %s for run %s", response.status_code, run_id)
            return None
        try:
            document = response.json()
        except ValueError:
            return None
        ended = runs.ended_run(document)
        if ended is None and runs.is_terminal(document):  # ended without usage: nothing to charge
            await self._queue.forget_pending(org_id, run_id)
        return ended


class StorageFees:
    """Charges each org's vector-store storage once per UTC day.

    OpenAI bills the `usage_bytes` of an org's vector stores per GB-day past the first GB,
    in decimal GB (10^9 bytes). The first sweep of a UTC day on any control plane claims
    each org's day (SET NX PX with a random token on prism.redis_keys.storage_fee), fetches
    every vector store the gateway saw the org create and not delete (with the org's own
    credential, else the gateway's), sums their usage_bytes and charges the GB past the
    first at the per-GB-day tool fee, for the current day, as measured then: a store
    created later in the day is charged from the next day on, one deleted later that day is
    charged for it. lua/storage_fees.lua charges only while the caller's token is still the
    claim, and marks the day charged, so an org's day is charged once however many control
    planes sweep, even when a claim expires mid-fetch. The charge goes to the org's spend
    (its budgets) and usage under the model `vector_store_storage` and no key: the gateway
    does not record which key created a store, and the storage is the org's. An org at or
    under the free GB is charged nothing and gets no usage row.

    A store the upstream answers 404 for is forgotten (no longer the org's); an expired one
    holds no data and costs nothing. Any other failure releases the org's claim, so the
    next sweep tries the day again.
    """

    def __init__(
        self,
        authorizer: Authorizer,
        accounts: Accounts,
        prices: Prices,
        claims: StorageFeeClaims,
        client: httpx.AsyncClient,
    ) -> None:
        self._authorizer = authorizer
        self._accounts = accounts
        self._prices = prices
        self._claims = claims
        self._client = client

    async def charge_due(self) -> None:
        """Charges every org whose storage of today nobody has charged or claimed."""
        at = now()
        day = usage.day_of(at)
        token = secrets.token_hex(16)
        org_ids = await self._accounts.org_ids()
        fees = await self._prices.tool_fees()
        # Orgs, like their stores' fetches, a few at a time: all at once would take every
        # connection of the Redis pool that Check needs too. They are claimed a batch at a
        # time, so no claim waits long enough to expire before its org's turn.
        orgs = asyncio.Semaphore(_CONCURRENT_FETCHES)

        async def one(org_id: str) -> None:
            async with orgs:
                await self._charge(org_id, day, at, token, fees)

        for start in range(0, len(org_ids), _STORAGE_BATCH):
            batch = org_ids[start : start + _STORAGE_BATCH]
            claimed = await self._claims.claim_storage_fees(batch, day, token, _STORAGE_CLAIM_MS)
            await asyncio.gather(*(one(org_id) for org_id in claimed))

    async def _charge(
        self, org_id: str, day: str, at: datetime, token: str, fees: pricing.ToolFees
    ) -> None:
        try:
            try:
                stored = await self._stored_bytes(org_id)
            except (DomainError, _FetchFailed) as error:
                log.warning("storage of org %s on %s retried later: %s", org_id, day, error)
                await self._claims.release_storage_fee(org_id, day, token)
                return
            cost = pricing.storage_cost(fees, stored)
            if await self._claims.charge_storage_fee(org_id, at, token, cost) and cost:
                metrics.COST_USD.labels(pricing.VECTOR_STORE_STORAGE).inc(cost / pricing.MICRO_USD)
        except DomainError as error:
            # Redis gone: the claim expires and a later sweep charges the day.
            log.warning("storage of org %s on %s not charged: %s", org_id, day, error)

    async def _stored_bytes(self, org_id: str) -> int:
        store_ids = await self._claims.vector_store_ids(org_id)
        if not store_ids:
            return 0
        upstream = await self._authorizer.upstream_of(org_id)
        limit = asyncio.Semaphore(_CONCURRENT_FETCHES)

        async def size(store_id: str) -> int:
            async with limit:
                return await self._size(org_id, upstream, store_id)

        return sum(await asyncio.gather(*(size(store_id) for store_id in store_ids)))

    async def _size(self, org_id: str, upstream: Upstream, store_id: str) -> int:
        try:
            response = await _get(self._client, upstream, f"/vector_stores/{store_id}")
        except httpx.HTTPError as error:
            raise _FetchFailed(f"fetching vector store {store_id} failed: {error}") from None
        if response.status_code == 404:
            await self._claims.forget_object(org_id, store_id)
            return 0
        if response.status_code != 200:
            raise _FetchFailed(f"upstream answered {response.status_code} for {store_id}")
        try:
            document = response.json()
            stored = document["usage_bytes"]
        except (ValueError, TypeError, KeyError):
            raise _FetchFailed(f"upstream sent no usage_bytes for {store_id}") from None
        if not isinstance(stored, int) or isinstance(stored, bool) or stored < 0:
            raise _FetchFailed(f"upstream sent usage_bytes {stored!r} for {store_id}")
        return 0 if document.get("status") == "expired" else stored


class _FetchFailed(Exception):
    """The upstream did not tell a vector store's size; the day is retried."""


async def _get(client: httpx.AsyncClient, upstream: Upstream, path: str) -> httpx.Response:
    """GET an Assistants object upstream with the credential given."""
    return await client.get(
        upstream.base_url + path,
        headers={"Authorization": f"Bearer {upstream.api_key}", "OpenAI-Beta": "assistants=v2"},
    )
