"""Telling the control plane what an allowed request's response showed (Authorizer.Record).

The gateway reads the responses of the routes the route table marks (`routes.observed`): the
objects a response created, so that the org owns them; the objects it deleted; the runs it
showed ended with usage and the run steps it showed completed with tool calls, which the
control plane charges (once each) and answers the runs' charges of, kept on the request's
Trace for its `x-prism-cost` (headers.py) and its log. And when Check said the request holds
a concurrency slot (`record_wanted`), the control plane is told when the response is over,
however it ended: sent whole, a stream ended or cut, the client gone, a gateway error.

When it is sent:
- the objects a JSON body shows created are recorded, and the Record awaited, before the
  body is sent, so the client's next request with their ids passes;
- in a stream, an object the client could name in a request while the stream goes on
  (Check's kinds: here, the thread of `thread.created`), and a run, which the control
  plane's sweeper must be able to find and charge however the stream ends, are recorded,
  and the Record awaited, before the chunk holding its event is relayed. Everything else a
  stream shows (the messages it created, runs that ended) waits for the end of the
  response, so no other chunk is ever delayed for it;
- what is left goes, with `finished`, in one Record when the response ends, awaited before
  the client can tell it has ended: before a JSON body is sent; before the chunk holding a
  stream's `done` event is relayed (the OpenAI SDK stops reading there); before the last
  byte of a download of announced length; otherwise before the end of the response, after
  its last byte. So a client sending its next request as soon as it has this response finds
  its slot free and its run's tokens counted. Awaited too before a gateway error (a 502,
  504) is sent. A response abandoned midway (the client gone, the upstream cut off) ends
  with the same Record, sent in the background;
- a Record is sent only when there is something to record or a slot to release, and once
  sent is not cancelled with its request: a client leaving cannot lose it.

A request's slot is a lease (CheckResponse.slot_lease_ms), renewed by leases.py from the
moment Check allowed the request until its final Record is sent; should that Record be lost,
the slot is free once the lease passes.

Every Record goes through the outbox (outbox.py), which delivers it at least once, and the
control plane applies it once. A response waits for a Record's answer for up to
RECORD_RETRY_SECONDS (a control plane restarting takes a second or two); the outbox goes on
after that. Objects the client has not yet seen (all a JSON body created; a stream's new
thread and the vector stores made with it) are its creator's before their ids go out, or
not at all: if the control plane has not taken their Record by then, the gateway deletes
them upstream (cancels a run), and the client gets a 503 (in a stream, an `error` event)
instead of their ids. Their Record is still delivered: an undone run is charged for what it
used, and the id of a deleted object names nothing. The undoing, like the sending, goes on
if the client leaves meanwhile.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from urllib.parse import quote

from prism.operations import PATH_OBJECT_KINDS, RUN, THREAD, InlineStores, Operation
from prism.v1 import authorizer_pb2

from .errors import not_recorded
from .headers import Trace
from .leases import Leases
from .observe import (
    EventStream,
    Seen,
    Undo,
    inspect_json,
    json_object,
    made_stores,
    run_event_seen,
)
from .outbox import Outbox
from .references import RequestFacts
from .routes import JSON_BODY_LIMIT, observed
from .spool import Entry

log = logging.getLogger("prism.dataplane")

# In a stream, these are recorded before the client sees their ids: the kinds a request
# can name for Check to verify (its path's first object, its body's references), and runs,
# for the sweeper.
_RECORDED_AT_ONCE = frozenset(PATH_OBJECT_KINDS.values()) | {RUN}
# A run stream's last event (`data: [DONE]`), on which the OpenAI SDK closes the response.
_LAST_EVENT = "done"
# Past the deadline, how much longer shutdown waits for background Records before cancelling.
_SHUTDOWN_GRACE_SECONDS = 1.0
# How long a response waits for its Record's answer while the control plane does not
# answer (a control plane restarting takes a second or two); the outbox goes on after.
RECORD_RETRY_SECONDS = 5.0
# An upstream call of this request: (method, path under the API root) -> (status, body).
UpstreamCall = Callable[[str, str], Awaitable[tuple[int, bytes]]]


class Recorder:
    """Sends the Records of every request through the outbox; owns the ones still being
    sent in the background."""

    def __init__(self, outbox: Outbox, deadline: float, leases: Leases) -> None:
        self._outbox = outbox
        self._deadline = deadline
        self.leases = leases
        self._tasks: set[asyncio.Task[authorizer_pb2.RecordResponse | None]] = set()

    def start(
        self,
        route: Operation,
        trace: Trace,
        decision: authorizer_pb2.CheckResponse,
        asked: RequestFacts,
        upstream: UpstreamCall,
    ) -> "ResponseRecord":
        """The Record of one allowed request, whose response is about to be forwarded;
        `asked`: what the request said; `upstream` makes its own calls (reading a thread,
        undoing)."""
        return ResponseRecord(self, route, trace, decision, asked, upstream)

    async def send(
        self, entry: Entry, undo: Callable[[], Awaitable[None]] | None = None
    ) -> authorizer_pb2.RecordResponse | None:
        """Sends a Record and waits up to RECORD_RETRY_SECONDS for its answer: None when
        there was none by then (it is delivered later), once `undo` has run. Cancelling
        the wait leaves it sending, and undoing."""
        return await asyncio.shield(self._sending(entry, RECORD_RETRY_SECONDS, undo))

    def send_later(self, entry: Entry) -> None:
        self._sending(entry, 0, None)

    def _sending(
        self, entry: Entry, wait: float, undo: Callable[[], Awaitable[None]] | None
    ) -> asyncio.Task[authorizer_pb2.RecordResponse | None]:
        task = asyncio.get_running_loop().create_task(self._delivered(entry, wait, undo))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _delivered(
        self, entry: Entry, wait: float, undo: Callable[[], Awaitable[None]] | None
    ) -> authorizer_pb2.RecordResponse | None:
        answer = await self._outbox.deliver(entry, wait)
        if answer is None and undo is not None:
            await undo()
        return answer

    async def close(self) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(
            set(self._tasks), timeout=self._deadline + _SHUTDOWN_GRACE_SECONDS
        )
        for task in pending:
            task.cancel()
        if pending:
            log.warning("shutdown: %d Record(s) still unanswered stay in the outbox", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)


class ResponseRecord:
    """What one response showed, told to the control plane as the module doc says."""

    def __init__(
        self,
        recorder: Recorder,
        route: Operation,
        trace: Trace,
        decision: authorizer_pb2.CheckResponse,
        asked: RequestFacts,
        upstream: UpstreamCall,
    ) -> None:
        self._recorder = recorder
        self._route = route
        self._trace = trace
        self._asked = asked
        self._upstream = upstream
        self._request_id = trace.request_id
        self._grant = decision.grant
        self._key_id = decision.principal.key_id
        self._sequence = 0
        self._finish = decision.record_wanted
        if decision.slot_lease_ms:
            recorder.leases.hold(decision.grant, decision.slot_lease_ms)
        self._pending = Seen()
        self._ended = False
        self._events: EventStream | None = None

    @property
    def reads_responses(self) -> bool:
        """Whether this route's responses are read (the upstream must send them uncompressed)."""
        return observed(self._route)

    async def whole_body(self, status: int, content_encoding: bytes, body: bytes) -> None:
        """A JSON response held whole, before it is sent: the response's only Record. A
        GatewayError (503) when what it created could not be recorded, and was undone."""
        if self._readable(status, content_encoding):
            seen = inspect_json(self._route, body, self._asked)
            if self._route.inline_stores is InlineStores.THREAD:
                seen.add(await self._thread_stores(seen))
            self._pending.add(seen)
        await self.end()

    def start_stream(self, status: int, content_encoding: bytes) -> bool:
        """An event stream is about to be relayed; whether its chunks are to be read."""
        if self._readable(status, content_encoding):
            self._events = EventStream(JSON_BODY_LIMIT)
        return self._events is not None

    async def stream_chunk(self, chunk: bytes) -> None:
        """A chunk of the stream, before it is relayed."""
        assert self._events is not None, "start_stream() said the stream is read"
        at_once = Seen()
        last = False
        for event in self._events.feed(chunk):
            last = last or event.name == _LAST_EVENT
            seen = run_event_seen(event, self._asked)
            if any(created.kind in _RECORDED_AT_ONCE for created in seen.objects):
                at_once.add(seen)
            else:
                self._pending.add(seen)
        if last:
            self._pending.add(at_once)
            await self.end()
        elif at_once:
            await self._send(at_once, finished=False)

    async def end(self) -> None:
        """The response is complete but for its end: sends what is left, and waits."""
        if not self._ended:
            self._ended = True
            self._recorder.leases.release(self._grant)
            if self._pending or self._finish:
                await self._send(self._pending, self._finish)

    async def _send(self, seen: Seen, finished: bool) -> None:
        """Sends what `seen` holds; what it created and the client has not seen yet is
        recorded, or undone and answered with a GatewayError (503)."""
        answer = await self._recorder.send(
            self._entry(seen, finished), partial(self._undo, seen.undo) if seen.undo else None
        )
        if answer is not None:
            self._trace.charges += answer.runs
        elif seen.undo:
            raise not_recorded()

    async def _undo(self, undo: list[Undo]) -> None:
        for method, path in undo:
            try:
                status, _ = await self._upstream(method, path)
            except Exception as error:  # whatever the upstream did, the client gets its 503
                log.warning("%s: undoing %s %s failed: %s", self._request_id, method, path, error)
                continue
            log.warning(
                "%s: not recorded, so undone upstream: %s %s (%d)",
                self._request_id,
                method,
                path,
                status,
            )

    async def _thread_stores(self, seen: Seen) -> Seen:
        """The vector stores made inline with a thread created by this response, which shows
        only the thread's id: read from the thread itself."""
        thread_id = next((obj.id for obj in seen.objects if obj.kind == THREAD), "")
        if not (self._asked.makes_vector_stores and thread_id):
            return Seen()
        try:
            status, body = await self._upstream("GET", f"/threads/{quote(thread_id, safe='')}")
        except Exception as error:  # the run and thread are still recorded
            log.warning("%s: reading thread %s failed: %s", self._request_id, thread_id, error)
            return Seen()
        document = json_object(body) if status == 200 else None
        if document is None:
            log.warning("%s: thread %s answered %d", self._request_id, thread_id, status)
            return Seen()
        return made_stores(document, self._asked)

    def over(self) -> None:
        """The response is over, however it ended: what `end` did not send goes now, in the
        background."""
        if not self._ended:
            self._ended = True
            self._recorder.leases.release(self._grant)
            if self._pending or self._finish:
                self._recorder.send_later(self._entry(self._pending, finished=self._finish))

    def _readable(self, status: int, content_encoding: bytes) -> bool:
        if not (observed(self._route) and 200 <= status < 300):
            return False
        if content_encoding not in (b"", b"identity"):
            # Asked for uncompressed; a response that is not cannot be read cheaply here.
            log.warning(
                "upstream sent %s despite no accept-encoding for %s: not recorded",
                content_encoding.decode("latin-1"),
                self._request_id,
            )
            return False
        return True

    def _entry(self, seen: Seen, finished: bool) -> Entry:
        """The request's next Record, numbered in the order they are made."""
        sequence = self._sequence
        self._sequence += 1
        request = authorizer_pb2.RecordRequest(
            grant=self._grant,
            objects=seen.objects,
            deleted_ids=seen.deleted_ids,
            runs=seen.runs,
            finished=finished,
            steps=seen.steps,
            sequence=sequence,
        )
        return Entry(f"{self._request_id}.{sequence}", self._key_id, request)
