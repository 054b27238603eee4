"""A run's status changes and the run steps it makes, as the spec defines them. Each change
is a function from the stored run to the changed run, or None when the run's status does
not allow it (Store.update_run then writes nothing), so a change decided on an old read
never overwrites a newer one (a cancel, an expiry)."""

from collections.abc import Callable, Sequence
from typing import Any

from ..ids import STEP, new_id, now
from ..models.types import Provider, ToolCall, Usage
from ..store import JSON, TERMINAL_STATUSES

TERMINAL = TERMINAL_STATUSES
Change = Callable[[JSON], JSON | None]


def is_past_expiry(run: JSON) -> bool:
    """A run that waits (queued, or for tool outputs) and is past its expires_at."""
    return (
        run["status"] in ("queued", "requires_action")
        and run["expires_at"] is not None
        and now() >= run["expires_at"]
    )


def _ended(run: JSON, status: str, stamp: str | None) -> JSON:
    run["status"] = status
    run["required_action"] = None
    run["expires_at"] = None
    if stamp is not None:
        run[stamp] = now()
    return run


def expire_waiting(run: JSON) -> JSON | None:
    if run["status"] not in ("queued", "requires_action", "in_progress"):
        return None
    return _ended(run, "expired", None)


def cancel(run: JSON) -> JSON | None:
    """A run waiting is cancelled at once; one being worked on is `cancelling` until its
    worker stops."""
    if run["status"] in ("queued", "requires_action"):
        return _ended(run, "cancelled", "cancelled_at")
    if run["status"] == "in_progress":
        run["status"] = "cancelling"
        return run
    return None


def finish_cancel(run: JSON) -> JSON | None:
    if run["status"] != "cancelling":
        return None
    return _ended(run, "cancelled", "cancelled_at")


def start(run: JSON) -> JSON | None:
    """queued -> in_progress; a run found in_progress is one whose worker died."""
    if run["status"] not in ("queued", "in_progress"):
        return None
    run["status"] = "in_progress"
    run["started_at"] = run["started_at"] or now()
    return run


def resume(run: JSON) -> JSON | None:
    """requires_action -> queued once the tool outputs are in."""
    if run["status"] != "requires_action":
        return None
    run["status"] = "queued"
    run["required_action"] = None
    return run


def _while_in_progress(apply: Callable[[JSON], JSON]) -> Change:
    def change(run: JSON) -> JSON | None:
        return apply(run) if run["status"] == "in_progress" else None

    return change


def complete(usage: JSON | None) -> Change:
    def apply(run: JSON) -> JSON:
        run["usage"] = usage
        return _ended(run, "completed", "completed_at")

    return _while_in_progress(apply)


def incomplete(reason: str, usage: JSON | None) -> Change:
    def apply(run: JSON) -> JSON:
        run["usage"] = usage
        run["incomplete_details"] = {"reason": reason}
        return _ended(run, "incomplete", None)

    return _while_in_progress(apply)


def fail(code: str, message: str, usage: JSON | None) -> Change:
    def apply(run: JSON) -> JSON:
        run["usage"] = usage
        run["last_error"] = {"code": code, "message": message}
        return _ended(run, "failed", "failed_at")

    return _while_in_progress(apply)


def fail_any(code: str, message: str) -> Change:
    """Fails a run that has not ended, whatever it was doing (its workers kept dying)."""

    def change(run: JSON) -> JSON | None:
        if run["status"] in TERMINAL:
            return None
        run["last_error"] = {"code": code, "message": message}
        return _ended(run, "failed", "failed_at")

    return change


def expire_in_progress(run: JSON) -> JSON | None:
    if run["status"] not in ("queued", "in_progress"):
        return None
    return _ended(run, "expired", None)


def require_action(calls: Sequence[ToolCall]) -> Change:
    def apply(run: JSON) -> JSON:
        run["status"] = "requires_action"
        run["required_action"] = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {"tool_calls": [_call(call) for call in calls]},
        }
        return run

    return _while_in_progress(apply)


def _call(call: ToolCall, *, with_output: bool = False) -> JSON:
    """A function call; `with_output` adds the step's `output`, null until submitted."""
    function: dict[str, Any] = {"name": call.name, "arguments": call.arguments}
    if with_output:
        function["output"] = None
    return {"id": call.id, "type": "function", "function": function}


def usage_json(usage: Usage) -> JSON:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def add_usage(total: JSON | None, usage: Usage | None) -> JSON | None:
    """A run's usage so far; like OpenAI's, it says how many prompt tokens were cached."""
    if usage is None:
        return total
    if total is not None:
        cached = (total.get("prompt_token_details") or {}).get("cached_tokens", 0)
        usage = Usage(
            total["prompt_tokens"] + usage.prompt_tokens,
            total["completion_tokens"] + usage.completion_tokens,
            cached + usage.cached_tokens,
        )
    return usage_json(usage) | {"prompt_token_details": {"cached_tokens": usage.cached_tokens}}


def _provider_metadata(provider: Provider) -> dict[str, str]:
    # Which provider of the model's route answered: with fallbacks, not always the first.
    return {"provider": provider.route, "provider_host": provider.host}


def _step(run: JSON, kind: str, details: JSON, provider: Provider | None) -> JSON:
    return {
        "id": new_id(STEP),
        "object": "thread.run.step",
        "created_at": now(),
        "assistant_id": run["assistant_id"],
        "thread_id": run["thread_id"],
        "run_id": run["id"],
        "type": kind,
        "status": "in_progress",
        "step_details": details,
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "metadata": _provider_metadata(provider) if provider is not None else {},
        "usage": None,
    }


def message_creation_step(run: JSON, message_id: str) -> JSON:
    """In progress, as it is announced when the model starts answering."""
    return _step(
        run,
        "message_creation",
        {"type": "message_creation", "message_creation": {"message_id": message_id}},
        None,
    )


def finish_message_step(step: JSON, usage: Usage | None, provider: Provider) -> JSON:
    step["status"] = "completed"
    step["completed_at"] = now()
    step["usage"] = usage_json(usage) if usage is not None else None
    step["metadata"] = _provider_metadata(provider)
    return step


def tool_calls_step(run: JSON, calls: Sequence[ToolCall], provider: Provider) -> JSON:
    details = {
        "type": "tool_calls",
        "tool_calls": [_call(call, with_output=True) for call in calls],
    }
    return _step(run, "tool_calls", details, provider)


def complete_tool_step(step: JSON, turn: JSON) -> JSON:
    """The tool_calls step with the submitted outputs, completed."""
    outputs = {output["tool_call_id"]: output["output"] for output in turn["outputs"]}
    for call in step["step_details"]["tool_calls"]:
        call["function"]["output"] = outputs.get(call["id"])
    step["status"] = "completed"
    step["completed_at"] = now()
    step["usage"] = turn.get("usage")
    return step


def file_search_step(run: JSON, call: JSON) -> JSON:
    """A tool_calls step with the file_search call, completed: the engine ran it itself."""
    step = _step(run, "tool_calls", {"type": "tool_calls", "tool_calls": [call]}, None)
    step["status"] = "completed"
    step["completed_at"] = now()
    return step


def still_in_progress(run: JSON) -> JSON | None:
    """No change to the run, so its other writes (a step, its state) land only while it
    is still being worked on."""
    return run if run["status"] == "in_progress" else None
