"""Runs and run steps: create (on a thread, or with a new thread), list, retrieve, modify,
cancel, submit_tool_outputs; list and retrieve steps. Creating a run queues it; the workers
(engine/runs/worker.py) execute it. With `stream: true` the answer is the run's events as
server-sent events (engine/runs/events.py)."""

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from quart import Blueprint, Response, current_app, request

from prism.openai_errors import SERVER_ERROR, error_event

from ..errors import ApiError, not_found
from ..ids import RUN, THREAD, new_id, now
from ..pagination import list_body, parse_page
from ..runs import file_search, lifecycle
from ..runs.events import RunEvents
from ..runs.queue import RunQueue
from ..store import JSON
from .fields import Fields, expect, invalid_value, json_body, metadata_change, store
from .handlers import handles
from .messages import MESSAGE_FIELDS, new_message, require_attached_files, thread_exists
from .tooling import response_format, settle_tool_resources, tool_resources, tools

QUEUE = "engine.run_queue"
EVENTS = "engine.run_events"
log = logging.getLogger("engine.runs")
# How long a run may take before it expires, as on OpenAI.
RUN_LIFETIME_SECONDS = 600

bp = Blueprint("runs", __name__)

_RUN_FIELDS = (
    "assistant_id",
    "model",
    "instructions",
    "tools",
    "metadata",
    "temperature",
    "top_p",
    "stream",
    "max_prompt_tokens",
    "max_completion_tokens",
    "truncation_strategy",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
)
_CREATE_FIELDS = (
    *_RUN_FIELDS,
    "additional_instructions",
    "additional_messages",
    "reasoning_effort",
)
_THREAD_AND_RUN_FIELDS = (*_RUN_FIELDS, "thread", "tool_resources")


def queue() -> RunQueue:
    return current_app.extensions[QUEUE]


def _streamed(body: Fields) -> bool:
    value = body.data.get("stream")
    return value is not None and bool(expect(value, bool, "stream"))


def _sse(event: str, data: Any) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"event: {event}\ndata: {payload}\n\n".encode()


def _event_stream(
    thread_id: str, run_id: str, first: list[tuple[str, JSON]], after: str = "0"
) -> Response:
    """The run's events as server-sent events, from `first` to the run's end (or its
    requires_action), then `done`. A client that goes away leaves the run running."""

    # Read here: the body is sent after the request's context has gone.
    run_events: RunEvents = current_app.extensions[EVENTS]

    async def events() -> AsyncIterator[bytes]:
        for event, data in first:
            yield _sse(event, data)
        try:
            async for event, data in run_events.follow(thread_id, run_id, after):
                yield _sse(event, data)
        except Exception:
            log.exception("run %s: its event stream failed", run_id)
            message = (
                "The engine lost the run's events; the run goes on. Retrieve it to see how it ends."
            )
            yield error_event(message, SERVER_ERROR, SERVER_ERROR)
            return
        yield _sse("done", "[DONE]")

    response = Response(events(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    # A run streams for as long as the model answers.
    response.timeout = None
    return response


def _max_tokens(body: Fields, name: str) -> int | None:
    value = body.data.get(name)
    if value is None:
        return None
    expect(value, int, name)
    if value < 256:
        raise ApiError(
            400,
            f"Invalid '{name}': integer must be at least 256, but got {value} instead.",
            param=name,
            code="invalid_value",
        )
    return int(value)


def _truncation(body: Fields) -> JSON:
    strategy = body.object("truncation_strategy")
    if strategy is None:
        return {"type": "auto", "last_messages": None}
    strategy.only(("type", "last_messages"))
    kind = strategy.required_string("type", choices=("auto", "last_messages"))
    last = strategy.data.get("last_messages")
    if last is not None:
        expect(last, int, strategy.param("last_messages"))
        if last < 1:
            raise ApiError(
                400,
                f"Invalid '{strategy.param('last_messages')}': integer must be at least 1, "
                f"but got {last} instead.",
                param=strategy.param("last_messages"),
                code="invalid_value",
            )
    return {"type": kind, "last_messages": last}


def _tool_choice(body: Fields) -> str | JSON:
    value = body.data.get("tool_choice")
    if value is None:
        return "auto"
    if isinstance(value, str):
        if value not in ("none", "auto", "required"):
            raise invalid_value("tool_choice", value, ("none", "auto", "required"))
        return value
    choice = Fields.of(value, "tool_choice")
    kind = choice.required_string("type", choices=("function", "code_interpreter", "file_search"))
    if kind != "function":
        choice.only(("type",))
        return {"type": kind}
    choice.only(("type", "function"))
    function = choice.required_object("function")
    function.only(("name",))
    return {"type": "function", "function": {"name": function.required_string("name")}}


async def _new_run(body: Fields, thread_id: str) -> tuple[JSON, JSON]:
    """The run object (queued) and its worker state, from the body and the assistant."""
    assistant_id = body.required_string("assistant_id")
    model = body.string("model")
    instructions = body.string("instructions", max_length=256_000)
    run_tools = tools(body)
    metadata = body.metadata()
    temperature = body.number("temperature", minimum=0, maximum=2)
    top_p = body.number("top_p", minimum=0, maximum=1)
    max_prompt = _max_tokens(body, "max_prompt_tokens")
    max_completion = _max_tokens(body, "max_completion_tokens")
    truncation = _truncation(body)
    choice = _tool_choice(body)
    parallel = body.data.get("parallel_tool_calls")
    if parallel is not None:
        expect(parallel, bool, "parallel_tool_calls")
    fmt = response_format(body)
    additional = body.string("additional_instructions")
    assistant = await store().get_assistant(assistant_id)
    if assistant is None:
        raise not_found("assistant", assistant_id)
    created = now()
    run = {
        "id": new_id(RUN),
        "object": "thread.run",
        "created_at": created,
        "thread_id": thread_id,
        "assistant_id": assistant_id,
        "status": "queued",
        "required_action": None,
        "last_error": None,
        "expires_at": created + RUN_LIFETIME_SECONDS,
        "started_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "incomplete_details": None,
        "model": model or assistant["model"],
        "instructions": instructions
        if instructions is not None
        else assistant["instructions"] or "",
        "tools": run_tools if run_tools is not None else assistant["tools"],
        "metadata": metadata or {},
        "usage": None,
        "temperature": temperature if temperature is not None else assistant.get("temperature"),
        "top_p": top_p if top_p is not None else assistant.get("top_p"),
        "max_prompt_tokens": max_prompt,
        "max_completion_tokens": max_completion,
        "truncation_strategy": truncation,
        "tool_choice": choice,
        "parallel_tool_calls": True if parallel is None else parallel,
        "response_format": fmt if fmt is not None else assistant.get("response_format", "auto"),
    }
    state = {"additional_instructions": additional, "turns": [], "usage": None}
    return run, state


async def _start(run: JSON, state: JSON, messages: list[JSON]) -> JSON:
    active = await store().create_run(run, state, messages)
    if active is not None:
        raise ApiError(400, f"Thread {run['thread_id']} already has an active run {active}.")
    await queue().push(run["thread_id"], run["id"])
    return run


async def _run(thread_id: str, run_id: str) -> JSON:
    await thread_exists(thread_id)
    run = await store().get_run(thread_id, run_id)
    if run is None:
        raise not_found("run", run_id)
    if lifecycle.is_past_expiry(run):
        # A run waiting for tool outputs (or never picked up) past its expires_at ends here;
        # one in progress is ended by its worker.
        expired = await store().update_run(thread_id, run_id, lifecycle.expire_waiting)
        run = expired or await store().get_run(thread_id, run_id) or run
    return run


@handles(bp, "createRun")
async def create(thread_id: str) -> JSON | Response:
    body = await json_body(_CREATE_FIELDS)
    stream = _streamed(body)
    body.string("reasoning_effort", choices=("low", "medium", "high"))
    additional = [
        new_message(item.only(MESSAGE_FIELDS), thread_id)
        for item in body.items("additional_messages", max_items=32) or []
    ]
    await thread_exists(thread_id)
    run, state = await _new_run(body, thread_id)
    await require_attached_files(additional, "additional_messages")
    await _start(run, state, additional)
    if stream:
        created = [("thread.run.created", run), ("thread.run.queued", run)]
        return _event_stream(thread_id, run["id"], created)
    return run


@handles(bp, "createThreadAndRun")
async def create_thread_and_run() -> JSON | Response:
    body = await json_body(_THREAD_AND_RUN_FIELDS)
    stream = _streamed(body)
    thread_body = body.object("thread") or Fields({}, "thread")
    thread_body.only(("messages", "tool_resources", "metadata"))
    thread_resources = tool_resources(thread_body)
    run_resources = tool_resources(body)
    thread = {
        "id": new_id(THREAD),
        "object": "thread",
        "created_at": now(),
        "tool_resources": thread_resources or run_resources or {},
        "metadata": thread_body.metadata() or {},
    }
    messages = [
        new_message(item.only(MESSAGE_FIELDS), thread["id"])
        for item in thread_body.items("messages", max_items=32) or []
    ]
    run, state = await _new_run(body, thread["id"])
    await require_attached_files(messages, "thread.messages")
    await settle_tool_resources(thread_resources, "thread.tool_resources")
    await settle_tool_resources(run_resources, "tool_resources")
    await store().create_thread(thread, messages)
    await _start(run, state, [])
    if stream:
        created = [
            ("thread.created", thread),
            ("thread.run.created", run),
            ("thread.run.queued", run),
        ]
        return _event_stream(thread["id"], run["id"], created)
    return run


@handles(bp, "listRuns")
async def list_runs(thread_id: str) -> JSON:
    page = parse_page(request.args)
    await thread_exists(thread_id)
    return list_body(*await store().list_runs(thread_id, page))


@handles(bp, "getRun")
async def retrieve(thread_id: str, run_id: str) -> JSON:
    return await _run(thread_id, run_id)


@handles(bp, "modifyRun")
async def modify(thread_id: str, run_id: str) -> JSON:
    metadata = await metadata_change()
    run = await _run(thread_id, run_id)
    if metadata is None:
        return run

    def set_metadata(current: JSON) -> JSON:
        current["metadata"] = metadata
        return current

    return await store().update_run(thread_id, run_id, set_metadata) or run


@handles(bp, "cancelRun")
async def cancel(thread_id: str, run_id: str) -> JSON:
    await json_body(())
    run = await _run(thread_id, run_id)
    if run["status"] in lifecycle.TERMINAL or run["status"] == "cancelling":
        raise ApiError(400, f"Cannot cancel run with status '{run['status']}'.")
    cancelled = await store().update_run(thread_id, run_id, lifecycle.cancel)
    if cancelled is None:
        # It ended between the read and the write.
        latest = await _run(thread_id, run_id)
        raise ApiError(400, f"Cannot cancel run with status '{latest['status']}'.")
    return cancelled


@handles(bp, "submitToolOuputsToRun")
async def submit_tool_outputs(thread_id: str, run_id: str) -> JSON | Response:
    body = await json_body(("tool_outputs", "stream"))
    stream = _streamed(body)
    outputs: list[dict[str, str]] = []
    for item in body.items("tool_outputs", required=True) or []:
        item.only(("tool_call_id", "output"))
        outputs.append(
            {"tool_call_id": item.required_string("tool_call_id"), "output": item.string("output")}
        )
    run = await _run(thread_id, run_id)
    if run["status"] != "requires_action":
        raise ApiError(400, f'Runs in status "{run["status"]}" do not accept tool outputs.')
    expected = [call["id"] for call in run["required_action"]["submit_tool_outputs"]["tool_calls"]]
    given = [output["tool_call_id"] for output in outputs]
    if sorted(expected) != sorted(given):
        raise ApiError(
            400,
            f"Expected tool outputs for call_ids {expected}, got {given}.",
            param="tool_outputs",
        )
    state = await store().get_run_state(thread_id, run_id)
    turn = state["turns"][-1]
    turn["outputs"] = [{**o, "output": o["output"] or ""} for o in outputs]
    step = await store().get_step(thread_id, turn["step_id"])
    changed = [lifecycle.complete_tool_step(step, turn)] if step is not None else []
    resumed = await store().update_run(
        thread_id, run_id, lifecycle.resume, state=state, changed_steps=changed
    )
    if resumed is None:
        latest = await _run(thread_id, run_id)
        raise ApiError(400, f'Runs in status "{latest["status"]}" do not accept tool outputs.')
    # Streams follow from here: the run's earlier events ended at its requires_action.
    run_events: RunEvents = current_app.extensions[EVENTS]
    after = await run_events.last_id(thread_id, run_id)
    await queue().push(thread_id, run_id)
    if stream:
        return _event_stream(thread_id, run_id, [("thread.run.queued", resumed)], after)
    return resumed


_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def _with_search_content() -> bool:
    """Whether `include[]` asks for the file_search results' content, the one value the
    spec's RunStepInclude has."""
    included = [*request.args.getlist("include[]"), *request.args.getlist("include")]
    for value in included:
        if value != _SEARCH_CONTENT:
            raise invalid_value("include", value, (_SEARCH_CONTENT,))
    return bool(included)


@handles(bp, "listRunSteps")
async def list_steps(thread_id: str, run_id: str) -> JSON:
    page = parse_page(request.args)
    content = _with_search_content()
    await _run(thread_id, run_id)
    data, has_more = await store().list_steps(thread_id, run_id, page)
    return list_body([file_search.public_step(s, with_content=content) for s in data], has_more)


@handles(bp, "getRunStep")
async def retrieve_step(thread_id: str, run_id: str, step_id: str) -> JSON:
    content = _with_search_content()
    await _run(thread_id, run_id)
    step = await store().get_step(thread_id, step_id)
    if step is None or step["run_id"] != run_id:
        raise not_found("run step", step_id)
    return file_search.public_step(step, with_content=content)
