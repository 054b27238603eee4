"""Runs and their steps. A run is created `queued` with its work pending; the first
retrieve performs all of it at once (so `create_and_poll` polls once), while a streamed
run performs it event by event as the stream is read.

A run whose tools include a function stops at `requires_action`; submitting the outputs
queues it again, and the next retrieve (or the stream) completes it.
"""

import re
from collections.abc import Iterator

from quart import Blueprint, Response, request

from . import replies, streaming
from .assistants import (
    REASONING_EFFORTS,
    read_response_format,
    read_sampling,
    read_tool_resources,
    read_tools,
)
from .errors import ApiError, not_found
from .store import ACTIVE, JSON, Event, Run, Store, list_page, new_id, now
from .threads import (
    NewMessage,
    add_message,
    create_thread,
    read_message,
    refuse_while_running,
    text_content,
)
from .web import Fields, json_body, store

bp = Blueprint("runs", __name__, url_prefix="/v1/threads")

# How long the SDK's poll helpers wait between retrieves, read from this header.
POLL_AFTER_MS = "10"
_RUN_OPTIONS = (
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
_CREATE_RUN_FIELDS = (
    *_RUN_OPTIONS,
    "additional_instructions",
    "additional_messages",
    "reasoning_effort",
)
_THREAD_AND_RUN_FIELDS = (*_RUN_OPTIONS, "thread", "tool_resources")


@bp.after_request
async def poll_quickly(response: Response) -> Response:
    response.headers["openai-poll-after-ms"] = POLL_AFTER_MS
    return response


def _new_run(assistant: JSON, body: Fields) -> Run:
    """Validates the run options in `body` (before anything is written) and builds the
    queued run, the assistant's settings filling whatever the request leaves out."""
    instructions = body.string("instructions")
    if instructions is None:
        instructions = assistant["instructions"] or ""
    if extra := body.string("additional_instructions"):
        instructions = f"{instructions}\n{extra}" if instructions else extra
    tools = read_tools(body, max_items=20)
    temperature, top_p = read_sampling(body)
    # Checked like OpenAI does, though a run object has no field to echo it in.
    body.string("reasoning_effort", choices=REASONING_EFFORTS)
    created = now()
    obj = {
        "id": new_id("run_"),
        "object": "thread.run",
        "created_at": created,
        "thread_id": None,  # set when the run starts on its thread
        "assistant_id": assistant["id"],
        "status": "queued",
        "required_action": None,
        "last_error": None,
        "expires_at": created + 600,
        "started_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "incomplete_details": None,
        "model": body.string("model") or assistant["model"],
        "instructions": instructions,
        "tools": assistant["tools"] if tools is None else tools,
        "metadata": body.metadata() or {},
        "usage": None,
        "temperature": assistant["temperature"] if temperature is None else temperature,
        "top_p": assistant["top_p"] if top_p is None else top_p,
        "max_prompt_tokens": body.integer("max_prompt_tokens", minimum=256),
        "max_completion_tokens": body.integer("max_completion_tokens", minimum=256),
        "truncation_strategy": _truncation_strategy(body),
        "tool_choice": _tool_choice(body),
        "parallel_tool_calls": body.boolean("parallel_tool_calls") is not False,
        "response_format": read_response_format(body) or assistant["response_format"],
    }
    return Run(obj, tool_resources={})


def _truncation_strategy(body: Fields) -> JSON:
    strategy = body.object("truncation_strategy")
    if strategy is None:
        return {"type": "auto", "last_messages": None}
    return {
        "type": strategy.required_string("type", choices=("auto", "last_messages")),
        "last_messages": strategy.integer("last_messages", minimum=1),
    }


def _tool_choice(body: Fields) -> str | JSON:
    value = body.data.get("tool_choice")
    if value is None:
        return "auto"
    if isinstance(value, str):
        return body.required_string("tool_choice", choices=("none", "auto", "required"))
    choice = Fields.of(value, "tool_choice")
    kind = choice.required_string("type", choices=("function", "code_interpreter", "file_search"))
    if kind == "function":
        choice.required_object("function").required_string("name")
    return value


def _start(state: Store, thread_id: str, run: Run) -> None:
    run.obj["thread_id"] = thread_id
    state.runs[thread_id][run.obj["id"]] = run
    state.steps[run.obj["id"]] = {}
    run.pending = _perform(state, run)


def _respond(run: Run, stream: bool | None, happened: list[Event]) -> Response | JSON:
    if stream:
        return streaming.run_stream(happened, run)
    return run.obj


# The life cycle. Generators, so that a stream relays each event as it happens and a
# poll simply runs them to the end; each event carries the live object, which the
# stream serialises before the next step changes it.


def _perform(state: Store, run: Run) -> Iterator[Event]:
    obj = run.obj
    obj["status"] = "in_progress"
    obj["started_at"] = obj["started_at"] or now()
    yield "thread.run.in_progress", obj
    if call := replies.function_call(state, run):
        yield from _call_function(state, run, call)
        return
    answer = replies.reply(state, run)
    if answer.search_results is not None:
        yield from _search_files(state, run, answer.search_results)
    usage = replies.usage(state, run, answer.text)
    yield from _write_reply(state, run, answer, usage)
    obj.update(status="completed", completed_at=now(), expires_at=None, usage=usage)
    yield "thread.run.completed", obj


def _new_step(state: Store, run: Run, details: JSON) -> JSON:
    step = {
        "id": new_id("step_"),
        "object": "thread.run.step",
        "created_at": now(),
        "assistant_id": run.obj["assistant_id"],
        "thread_id": run.obj["thread_id"],
        "run_id": run.obj["id"],
        "type": details["type"],
        "status": "in_progress",
        "step_details": details,
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "metadata": {},
        "usage": None,
    }
    state.steps[run.obj["id"]][step["id"]] = step
    return step


def _call_function(state: Store, run: Run, call: replies.FunctionCall) -> Iterator[Event]:
    tool_call = {
        "id": new_id("call_"),
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
    run.tool_calls = [tool_call]
    step_call = {**tool_call, "function": {**tool_call["function"], "output": None}}
    # As OpenAI streams it: the step starts without calls and a delta brings the call,
    # which is what the SDK's handler announces as on_tool_call_created.
    step = _new_step(state, run, {"type": "tool_calls", "tool_calls": []})
    yield "thread.run.step.created", step
    yield "thread.run.step.in_progress", step
    step["step_details"]["tool_calls"].append(step_call)
    delta = {"step_details": {"type": "tool_calls", "tool_calls": [{"index": 0, **step_call}]}}
    yield (
        "thread.run.step.delta",
        {"id": step["id"], "object": "thread.run.step.delta", "delta": delta},
    )
    run.obj["status"] = "requires_action"
    run.obj["required_action"] = {
        "type": "submit_tool_outputs",
        "submit_tool_outputs": {"tool_calls": [tool_call]},
    }
    yield "thread.run.requires_action", run.obj


def _search_files(state: Store, run: Run, results: list[JSON]) -> Iterator[Event]:
    search_call = {
        "id": new_id("call_"),
        "type": "file_search",
        "file_search": {
            "ranking_options": {"ranker": "default_2024_08_21", "score_threshold": 0.0},
            "results": results,
        },
    }
    step = _new_step(state, run, {"type": "tool_calls", "tool_calls": [search_call]})
    yield "thread.run.step.created", step
    yield "thread.run.step.in_progress", step
    step.update(status="completed", completed_at=now())
    yield "thread.run.step.completed", step


def _write_reply(state: Store, run: Run, answer: replies.Reply, usage: JSON) -> Iterator[Event]:
    new = NewMessage(role="assistant", content=[])
    message = add_message(
        state,
        run.obj["thread_id"],
        new,
        assistant_id=run.obj["assistant_id"],
        run_id=run.obj["id"],
        status="in_progress",
    )
    details = {"type": "message_creation", "message_creation": {"message_id": message["id"]}}
    step = _new_step(state, run, details)
    yield "thread.run.step.created", step
    yield "thread.run.step.in_progress", step
    yield "thread.message.created", message
    yield "thread.message.in_progress", message
    # One delta per word, each with its leading space, so the deltas join to the text.
    words = re.findall(r"\s*\S+", answer.text)
    for i, word in enumerate(words):
        text: JSON = {"value": word}
        if i == len(words) - 1 and answer.annotations:
            text["annotations"] = [{"index": j, **a} for j, a in enumerate(answer.annotations)]
        yield (
            "thread.message.delta",
            {
                "id": message["id"],
                "object": "thread.message.delta",
                "delta": {"content": [{"index": 0, "type": "text", "text": text}]},
            },
        )
    message.update(
        content=[text_content(answer.text, answer.annotations)],
        status="completed",
        completed_at=now(),
    )
    yield "thread.message.completed", message
    step.update(status="completed", completed_at=now(), usage=usage)
    yield "thread.run.step.completed", step


def _submit(state: Store, run: Run, outputs: list[JSON]) -> list[Event]:
    """Records the outputs and queues the run again; returns what that changed."""
    run.tool_outputs = outputs
    step = next(
        s
        for s in state.steps[run.obj["id"]].values()
        if s["type"] == "tool_calls" and s["status"] == "in_progress"
    )
    by_id = {output["tool_call_id"]: output["output"] for output in outputs}
    for call in step["step_details"]["tool_calls"]:
        call["function"]["output"] = by_id[call["id"]]
    step.update(status="completed", completed_at=now())
    run.obj.update(status="queued", required_action=None)
    run.pending = _perform(state, run)
    return [("thread.run.step.completed", step), ("thread.run.queued", run.obj)]


# Routes


@bp.post("/runs")
async def create_thread_and_run() -> Response | JSON:
    state = store()
    body = await json_body(_THREAD_AND_RUN_FIELDS)
    assistant = state.assistant(body.required_string("assistant_id"))
    stream = body.boolean("stream")
    run = _new_run(assistant, body)
    run.tool_resources = read_tool_resources(body, state) or {}
    thread = create_thread(state, body.object("thread") or Fields({}, "thread"))
    _start(state, thread["id"], run)
    happened = [
        ("thread.created", thread),
        ("thread.run.created", run.obj),
        ("thread.run.queued", run.obj),
    ]
    return _respond(run, stream, happened)


@bp.get("/<thread_id>/runs")
async def list_runs(thread_id: str) -> JSON:
    state = store()
    state.thread(thread_id)
    return list_page([run.obj for run in state.runs[thread_id].values()], request.args)


@bp.post("/<thread_id>/runs")
async def create_run(thread_id: str) -> Response | JSON:
    state = store()
    state.thread(thread_id)
    body = await json_body(_CREATE_RUN_FIELDS)
    assistant = state.assistant(body.required_string("assistant_id"))
    stream = body.boolean("stream")
    run = _new_run(assistant, body)
    additional = [
        read_message(Fields.of(raw, f"additional_messages[{i}]"), state)
        for i, raw in enumerate(body.array("additional_messages") or [])
    ]
    refuse_while_running(state, thread_id)
    for message in additional:
        add_message(state, thread_id, message)
    _start(state, thread_id, run)
    return _respond(run, stream, [("thread.run.created", run.obj), ("thread.run.queued", run.obj)])


@bp.get("/<thread_id>/runs/<run_id>")
async def retrieve_run(thread_id: str, run_id: str) -> JSON:
    run = store().run(thread_id, run_id)
    run.settle()
    return run.obj


@bp.post("/<thread_id>/runs/<run_id>")
async def modify_run(thread_id: str, run_id: str) -> JSON:
    run = store().run(thread_id, run_id)
    body = await json_body(("metadata",))
    if body.has("metadata"):
        run.obj["metadata"] = body.metadata() or {}
    return run.obj


@bp.post("/<thread_id>/runs/<run_id>/cancel")
async def cancel_run(thread_id: str, run_id: str) -> JSON:
    state = store()
    run = state.run(thread_id, run_id)
    status = run.obj["status"]
    if status not in ACTIVE:
        raise ApiError(400, f"Cannot cancel run with status '{status}'.")
    run.pending = None
    cancelled = now()
    run.obj.update(
        status="cancelled", cancelled_at=cancelled, required_action=None, expires_at=None
    )
    for step in state.steps[run_id].values():
        if step["status"] == "in_progress":
            step.update(status="cancelled", cancelled_at=cancelled)
    for message in state.messages[thread_id].values():
        if message["run_id"] == run_id and message["status"] == "in_progress":
            message.update(
                status="incomplete",
                incomplete_at=cancelled,
                incomplete_details={"reason": "run_cancelled"},
            )
    return run.obj


@bp.post("/<thread_id>/runs/<run_id>/submit_tool_outputs")
async def submit_tool_outputs(thread_id: str, run_id: str) -> Response | JSON:
    state = store()
    run = state.run(thread_id, run_id)
    body = await json_body(("tool_outputs", "stream"))
    stream = body.boolean("stream")
    outputs = []
    for i, raw in enumerate(body.array("tool_outputs", required=True) or []):
        output = Fields.of(raw, f"tool_outputs[{i}]").only(("tool_call_id", "output"))
        outputs.append(
            {
                "tool_call_id": output.required_string("tool_call_id"),
                "output": output.string("output") or "",
            }
        )
    if run.obj["status"] != "requires_action":
        raise ApiError(
            400,
            f'Runs in status "{run.obj["status"]}" do not accept tool outputs.',
        )
    expected = {call["id"] for call in run.tool_calls}
    submitted = [output["tool_call_id"] for output in outputs]
    if sorted(submitted) != sorted(expected):
        raise ApiError(
            400,
            f"Expected tool outputs for call_ids {sorted(expected)}, got {submitted}.",
            param="tool_outputs",
        )
    return _respond(run, stream, _submit(state, run, outputs))


@bp.get("/<thread_id>/runs/<run_id>/steps")
async def list_steps(thread_id: str, run_id: str) -> JSON:
    state = store()
    state.run(thread_id, run_id)
    return list_page(list(state.steps[run_id].values()), request.args)


@bp.get("/<thread_id>/runs/<run_id>/steps/<step_id>")
async def retrieve_step(thread_id: str, run_id: str, step_id: str) -> JSON:
    state = store()
    state.run(thread_id, run_id)
    step = state.steps[run_id].get(step_id)
    if step is None:
        raise not_found("run step", step_id)
    return step
