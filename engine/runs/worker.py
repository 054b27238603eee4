"""The workers of one engine process: each claims a run from the queue, keeps its lease alive
while it works, and takes the run one model turn further: to `completed` (with the assistant's
message and a message_creation step), `requires_action` (with a tool_calls step), or
`failed` / `incomplete` / `expired` / `cancelled`.

A run found `in_progress` when claimed is one whose worker died: it is worked on again from
its last stored state (nothing of an unfinished turn was stored), until MAX_CLAIMS claims.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from ..ids import MESSAGE, new_id, now
from ..models.chat import ChatClient
from ..models.prompt import (
    FunctionTool,
    Message,
    NamedFunction,
    PromptInput,
    PromptTooLongError,
    ToolChoice,
    ToolOutput,
    ToolTurn,
    Truncation,
    build_request,
)
from ..models.routing import NoRouteError
from ..models.types import Finished, ModelError, RetrievedChunk, TextDelta, ToolCall
from ..store import JSON, Store
from ..vector_stores import VectorStores
from . import file_search, lifecycle
from .events import RunEvents
from .queue import MAX_CLAIMS, Claim, RunQueue

log = logging.getLogger("engine.runs")

# How often this process looks for runs whose worker died; also the longest an idle
# worker blocks waiting to be woken, so that look happens even with no runs queued.
_REQUEUE_EVERY_SECONDS = 1


class RunWorkers:
    def __init__(
        self,
        store: Store,
        queue: RunQueue,
        chat: ChatClient,
        events: RunEvents,
        vector_stores: VectorStores,
        count: int,
    ) -> None:
        self._store = store
        self._queue = queue
        self._chat = chat
        self._events = events
        self._vector_stores = vector_stores
        self._count = count
        self._tasks: list[asyncio.Task[None]] = []
        self._last_requeue = 0.0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop()) for _ in range(self._count)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                await self._requeue_expired()
                claim = await self._queue.claim()
                if claim is None:
                    await self._queue.wait(_REQUEUE_EVERY_SECONDS)
                    continue
                await self._work(claim)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis gone for a moment, say: the lease runs out and the run comes back.
                log.exception("run worker error; carrying on")
                await asyncio.sleep(1)

    async def _requeue_expired(self) -> None:
        """Looks for runs whose worker died, once a second or so across this process's
        workers rather than at every poll."""
        moment = time.monotonic()
        if moment - self._last_requeue >= _REQUEUE_EVERY_SECONDS:
            self._last_requeue = moment
            await self._queue.requeue_expired()

    async def _work(self, claim: Claim) -> None:
        thread_id, run_id = claim.thread_id, claim.run_id
        run = await self._store.get_run(thread_id, run_id)
        if run is None or run["status"] not in ("queued", "in_progress", "cancelling"):
            await self._queue.release(claim)
            return
        if claim.given_up:
            message = (
                f"The run's worker stopped {MAX_CLAIMS} times before finishing it; it was given up."
            )
            await self._conclude(thread_id, run_id, lifecycle.fail_any("server_error", message))
        elif (stop := _stop(run)) is not None:
            await self._conclude(thread_id, run_id, stop)
        else:
            if claim.claims > 1:
                log.warning("run %s: picked up again after its worker stopped", run_id)
            if not await self._supervised(claim):
                # The entry is another worker's now: releasing it would drop their lease.
                return
        await self._queue.release(claim)

    async def _supervised(self, claim: Claim) -> bool:
        """The model turn, with the lease renewed beside it; a cancel or a lost lease stops
        the turn, and the run's expiry ends it. False when the lease was lost."""
        turn = asyncio.create_task(self._turn(claim.thread_id, claim.run_id))
        interval = min(self._queue.lease_seconds / 3, 1.0)
        while not turn.done():
            await asyncio.wait([turn], timeout=interval)
            if turn.done():
                break
            if not await self._queue.renew(claim):
                log.warning("run %s: lease lost; another worker takes it over", claim.run_id)
                turn.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await turn
                return False
            run = await self._store.get_run(claim.thread_id, claim.run_id)
            stop = None if run is None else _stop(run)
            if run is None or stop is not None:
                turn.cancel()
            if stop is not None:
                await self._conclude(claim.thread_id, claim.run_id, stop)
        with contextlib.suppress(asyncio.CancelledError):
            await turn
        return True

    async def _turn(self, thread_id: str, run_id: str) -> None:
        run = await self._store.update_run(thread_id, run_id, lifecycle.start)
        if run is None:
            return
        await self._events.publish(thread_id, run_id, "thread.run.in_progress", run)
        state = await self._store.get_run_state(thread_id, run_id)
        messages = await self._store.thread_messages(thread_id)
        retrieved = await self._retrieved(run, state, messages)
        if retrieved is None:
            return
        try:
            request = build_request(self._prompt(run, state, messages, retrieved))
        except PromptTooLongError as error:
            await self._end(run, lifecycle.incomplete(error.incomplete_reason, state["usage"]))
            return
        # Announced when the first text arrives, stored when the answer is complete.
        message = self._message(run)
        step = lifecycle.message_creation_step(run, message["id"])
        text: list[str] = []
        calls: list[ToolCall] = []
        finished: Finished | None = None
        try:
            async for event in self._chat.complete(request):
                if isinstance(event, TextDelta):
                    if not text:
                        await self._announce(run, step, message)
                    text.append(event.text)
                    await self._publish(run, "thread.message.delta", _delta(message, event.text))
                elif isinstance(event, ToolCall):
                    calls.append(event)
                else:
                    finished = event
        except ModelError as error:
            await self._end(run, lifecycle.fail(error.code, error.message, state["usage"]))
            return
        except NoRouteError as error:
            await self._end(run, lifecycle.fail("invalid_prompt", str(error), state["usage"]))
            return
        assert finished is not None  # complete() always ends with Finished
        usage = lifecycle.add_usage(state["usage"], finished.usage)
        if calls:
            tool_step = lifecycle.tool_calls_step(run, calls, finished.provider)
            state["usage"] = usage
            state["turns"].append(
                {
                    "calls": [
                        {"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls
                    ],
                    "text": "".join(text),
                    "outputs": [],
                    "step_id": tool_step["id"],
                    "usage": lifecycle.usage_json(finished.usage) if finished.usage else None,
                }
            )
            await self._end(
                run,
                lifecycle.require_action(calls),
                state=state,
                new_steps=[tool_step],
                events=[
                    ("thread.run.step.created", tool_step),
                    ("thread.run.step.in_progress", tool_step),
                ],
            )
            return
        if not text:
            await self._announce(run, step, message)
        cut = finished.finish_reason == "length"
        reply = "".join(text)
        annotations = file_search.citations(reply, retrieved)
        if annotations:
            # Streams learn of the citations as the spec's deltas carry them: indexed.
            await self._publish(run, "thread.message.delta", _delta(message, "", annotations))
        _finish_message(message, reply, annotations, incomplete=cut)
        lifecycle.finish_message_step(step, finished.usage, finished.provider)
        change = lifecycle.incomplete("max_completion_tokens", usage) if cut else None
        await self._end(
            run,
            change or lifecycle.complete(usage),
            messages=[message],
            new_steps=[step],
            events=[
                (f"thread.message.{message['status']}", message),
                ("thread.run.step.completed", step),
            ],
        )

    async def _conclude(self, thread_id: str, run_id: str, change: lifecycle.Change) -> None:
        """Ends the run outside a model turn, and tells its streams."""
        done = await self._store.update_run(thread_id, run_id, change)
        if done is not None:
            await self._publish(done, f"thread.run.{done['status']}", done)

    async def _publish(self, run: JSON, event: str, data: JSON) -> None:
        await self._events.publish(run["thread_id"], run["id"], event, data)

    async def _announce(self, run: JSON, step: JSON, message: JSON) -> None:
        for event, data in (
            ("thread.run.step.created", step),
            ("thread.run.step.in_progress", step),
            ("thread.message.created", message),
            ("thread.message.in_progress", message),
        ):
            await self._publish(run, event, data)

    async def _end(
        self,
        run: JSON,
        change: lifecycle.Change,
        *,
        state: JSON | None = None,
        messages: Sequence[JSON] = (),
        new_steps: Sequence[JSON] = (),
        events: Sequence[tuple[str, JSON]] = (),
    ) -> None:
        """Applies the turn's outcome and tells streams; a run cancelled meanwhile is
        cancelled instead, and the turn's writes and events are dropped."""
        done = await self._store.update_run(
            run["thread_id"],
            run["id"],
            change,
            state=state,
            messages=messages,
            new_steps=new_steps,
        )
        if done is None:
            done = await self._store.update_run(
                run["thread_id"], run["id"], lifecycle.finish_cancel
            )
            events = ()
        if done is None:
            return
        for event, data in events:
            await self._publish(run, event, data)
        await self._publish(done, f"thread.run.{done['status']}", done)

    async def _retrieved(
        self, run: JSON, state: JSON, messages: Sequence[JSON]
    ) -> tuple[RetrievedChunk, ...] | None:
        """The file_search results this run answers from: searched once per run (with a
        tool_calls step), then kept in its state for the turns after requires_action. None
        when the run stopped being in progress meanwhile (then it is ended here)."""
        if "retrieved" in state:
            return file_search.chunks_from_json(state["retrieved"])
        tool = file_search.tool(run)
        if tool is None:
            return ()
        ids = file_search.store_ids(
            await self._store.get_assistant(run["assistant_id"]),
            await self._store.get_thread(run["thread_id"]),
        )
        query = next((_text(m) for m in reversed(messages) if m["role"] == "user"), "").strip()
        if not ids or not query:
            return ()
        found = await file_search.search(self._vector_stores, run, tool, ids, query)
        state["retrieved"] = file_search.chunks_json(found.chunks)
        stored = await self._store.update_run(
            run["thread_id"],
            run["id"],
            lifecycle.still_in_progress,
            state=state,
            new_steps=[found.step],
        )
        if stored is None:
            await self._conclude(run["thread_id"], run["id"], lifecycle.finish_cancel)
            return None
        step = file_search.public_step(found.step, with_content=False)
        for event in ("created", "in_progress", "completed"):
            await self._publish(run, f"thread.run.step.{event}", step)
        return found.chunks

    def _prompt(
        self,
        run: JSON,
        state: JSON,
        messages: Sequence[JSON],
        retrieved: Sequence[RetrievedChunk],
    ) -> PromptInput:
        truncation = run["truncation_strategy"]
        return PromptInput(
            model=run["model"],
            instructions=run["instructions"],
            additional_instructions=state.get("additional_instructions"),
            messages=[
                Message(m["role"], _text(m)) for m in messages if m["role"] in ("user", "assistant")
            ],
            tool_turns=[_tool_turn(turn) for turn in state["turns"]],
            tools=[
                FunctionTool(
                    name=tool["function"]["name"],
                    description=tool["function"].get("description"),
                    parameters=tool["function"].get("parameters"),
                    strict=tool["function"].get("strict"),
                )
                for tool in run["tools"]
                if tool["type"] == "function"
            ],
            tool_choice=_tool_choice(run["tool_choice"]),
            parallel_tool_calls=run["parallel_tool_calls"],
            temperature=run["temperature"],
            top_p=run["top_p"],
            response_format=run["response_format"],
            max_prompt_tokens=run["max_prompt_tokens"],
            max_completion_tokens=run["max_completion_tokens"],
            truncation=Truncation(truncation["type"], truncation.get("last_messages")),
            retrieved=retrieved,
        )

    def _message(self, run: JSON) -> JSON:
        return {
            "id": new_id(MESSAGE),
            "object": "thread.message",
            "created_at": now(),
            "thread_id": run["thread_id"],
            "status": "in_progress",
            "incomplete_details": None,
            "completed_at": None,
            "incomplete_at": None,
            "role": "assistant",
            "content": [],
            "assistant_id": run["assistant_id"],
            "run_id": run["id"],
            "attachments": [],
            "metadata": {},
        }


def _stop(run: JSON) -> lifecycle.Change | None:
    """How a run being worked on ends without a model turn: cancelled, or expired."""
    if run["status"] == "cancelling":
        return lifecycle.finish_cancel
    if run["expires_at"] is not None and now() >= run["expires_at"]:
        return lifecycle.expire_in_progress
    return None


def _finish_message(message: JSON, text: str, annotations: list[JSON], *, incomplete: bool) -> None:
    finished = now()
    message["content"] = [{"type": "text", "text": {"value": text, "annotations": annotations}}]
    if incomplete:
        message.update(
            status="incomplete", incomplete_details={"reason": "max_tokens"}, incomplete_at=finished
        )
    else:
        message.update(status="completed", completed_at=finished)


def _delta(message: JSON, text: str, annotations: Sequence[JSON] = ()) -> JSON:
    indexed = [{"index": i, **annotation} for i, annotation in enumerate(annotations)]
    return {
        "id": message["id"],
        "object": "thread.message.delta",
        "delta": {
            "content": [
                {"index": 0, "type": "text", "text": {"value": text, "annotations": indexed}}
            ]
        },
    }


def _text(message: JSON) -> str:
    return "\n".join(
        part["text"]["value"] for part in message["content"] if part.get("type") == "text"
    )


def _tool_turn(turn: JSON) -> ToolTurn:
    return ToolTurn(
        calls=tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in turn["calls"]),
        outputs=tuple(ToolOutput(o["tool_call_id"], o["output"]) for o in turn["outputs"]),
        text=turn["text"],
    )


def _tool_choice(choice: str | JSON) -> ToolChoice | None:
    if isinstance(choice, str):
        return choice  # type: ignore[return-value]
    if choice.get("type") == "function":
        return NamedFunction(choice["function"]["name"])
    # file_search is run before the model is called (file_search.tool); code_interpreter
    # is not run by this engine: the model chooses.
    return "auto"
