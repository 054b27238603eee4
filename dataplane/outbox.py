"""The outbox: every Record goes through it, so what a response showed reaches the control
plane at least once, through a control-plane outage and this process's own restart.

A Record is appended to the process's spool (spool.py) before it is sent, and marked
delivered when the control plane has answered it. A Record the control plane did not
answer is sent again, with pauses doubling to MAX_PAUSE_SECONDS, until it is answered or
refused for good, for as long as it takes, by this process or, if it dies, by the next one
to claim its spool. Sending again is safe because the control plane applies each Record
once (RecordRequest.sequence).

Records are delivered in order per key: once one of a key's Records waits to be sent
again, the key's later Records queue behind it, so an object's creation is applied before
its deletion, and an assistant's models in the order they were set. Records of requests in
flight at the same time are not ordered among themselves, as their requests are not.
"""

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

from prism.v1 import authorizer_pb2

from .authorizer import Authorizer, RecordFailed
from .spool import Entry, Spool

log = logging.getLogger("prism.dataplane")

_FIRST_PAUSE_SECONDS = 0.05
MAX_PAUSE_SECONDS = 2.0


@dataclass
class _Lane:
    """One key's Records waiting to be sent again, oldest first, each with the future its
    sender may be waiting on."""

    waiting: deque[tuple[Entry, "asyncio.Future[authorizer_pb2.RecordResponse | None]"]] = field(
        default_factory=deque
    )
    sender: "asyncio.Task[None] | None" = None


class Outbox:
    def __init__(self, spool: Spool, authorizer: Authorizer) -> None:
        self._spool = spool
        self._authorizer = authorizer
        self._lanes: dict[str, _Lane] = {}

    def open(self) -> None:
        """Claims a spool; what it holds undelivered is sent again, in its order."""
        for entry in self._spool.open():
            self._queue(entry)

    async def deliver(self, entry: Entry, wait: float) -> authorizer_pb2.RecordResponse | None:
        """Sends the Record, and answers the control plane's answer when it comes within
        `wait` seconds; else None, and the Record is delivered later all the same (or was
        refused for good, which is logged)."""
        try:
            self._spool.append(entry)
        except OSError as error:
            # Sent all the same; only a restart before its answer would lose it now.
            log.error("outbox: Record %s not spooled (%s)", entry.record_id, error)
        if entry.key_id not in self._lanes:
            try:
                answer = await self._authorizer.record(entry.request)
            except RecordFailed as failed:
                if failed.final:
                    self._refused(entry, failed)
                    return None
                log.warning(
                    "Record %s not answered (%s): kept in the outbox, sent again",
                    entry.record_id,
                    failed.code,
                )
            else:
                self._spool.delivered(entry.record_id)
                return answer
        answered = self._queue(entry)
        try:
            return await asyncio.wait_for(asyncio.shield(answered), wait)
        except TimeoutError:
            return None

    @property
    def waiting(self) -> int:
        """How many Records wait to be sent again."""
        return sum(len(lane.waiting) for lane in self._lanes.values())

    async def close(self) -> None:
        """Stops sending; what is undelivered stays in the spool for the next process."""
        senders = [lane.sender for lane in self._lanes.values() if lane.sender is not None]
        for sender in senders:
            sender.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        if self._lanes:
            log.warning("outbox: %d Record(s) left in the spool for the next start", self.waiting)
        self._lanes.clear()
        self._spool.close()

    def _queue(self, entry: Entry) -> "asyncio.Future[authorizer_pb2.RecordResponse | None]":
        loop = asyncio.get_running_loop()
        lane = self._lanes.get(entry.key_id)
        if lane is None:
            lane = self._lanes[entry.key_id] = _Lane()
            lane.sender = loop.create_task(self._send_again(entry.key_id, lane))
        answered: asyncio.Future[authorizer_pb2.RecordResponse | None] = loop.create_future()
        lane.waiting.append((entry, answered))
        return answered

    async def _send_again(self, key_id: str, lane: _Lane) -> None:
        pause = _FIRST_PAUSE_SECONDS
        while lane.waiting:
            entry, answered = lane.waiting[0]
            answer = None
            try:
                answer = await self._authorizer.record(entry.request)
            except RecordFailed as failed:
                if not failed.final:
                    await asyncio.sleep(pause)
                    pause = min(2 * pause, MAX_PAUSE_SECONDS)
                    continue
                self._refused(entry, failed)
            except Exception:
                # Whatever went wrong, the key's Records must not stall behind this one.
                log.exception("outbox: sending Record %s failed; trying again", entry.record_id)
                await asyncio.sleep(MAX_PAUSE_SECONDS)
                continue
            else:
                self._spool.delivered(entry.record_id)
            pause = _FIRST_PAUSE_SECONDS
            lane.waiting.popleft()
            if not answered.done():
                answered.set_result(answer)
        del self._lanes[key_id]
        log.info("outbox: the Records of key %s are delivered", key_id)

    def _refused(self, entry: Entry, failed: RecordFailed) -> None:
        log.error(
            "Record %s refused by the control plane (%s): dropped",
            entry.record_id,
            failed.code,
        )
        self._spool.delivered(entry.record_id)
