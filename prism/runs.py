"""Reading a run object's end and usage, as the Assistants API returns it. The data plane
reads the runs responses show (dataplane/observe.py), the control plane's sweeper the runs
it fetches (controlplane/sweeper.py); both charge what this reads."""

import time
from dataclasses import dataclass
from typing import Any

# A run in one of these states does no more work, so its usage is final.
TERMINAL_RUN_STATUSES = frozenset({"completed", "failed", "cancelled", "expired", "incomplete"})
# Runs created longer ago than this are not charged when shown: the control plane remembers
# which runs it charged for a little longer (controlplane/charges.py), so an old run listed
# again is never charged twice.
CHARGE_WINDOW_SECONDS = 30 * 86_400


@dataclass(frozen=True)
class EndedRun:
    run_id: str
    thread_id: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    # Of prompt_tokens, those read from the prompt cache.
    cached_tokens: int


def is_terminal(run: Any) -> bool:
    return isinstance(run, dict) and run.get("status") in TERMINAL_RUN_STATUSES


def ended_run(run: Any) -> EndedRun | None:
    """The run's usage when `run` is a run object that has ended with usage."""
    if not is_terminal(run) or run.get("object") != "thread.run":
        return None
    created_at = _count(run.get("created_at"))
    if created_at is not None and created_at < time.time() - CHARGE_WINDOW_SECONDS:
        return None
    usage = run.get("usage")
    run_id = run.get("id")
    if not isinstance(usage, dict) or not isinstance(run_id, str) or not run_id:
        return None
    total = _count(usage.get("total_tokens"))
    if total is None:
        return None
    prompt = _count(usage.get("prompt_tokens")) or 0
    completion = _count(usage.get("completion_tokens")) or 0
    details = usage.get("prompt_token_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else None
    thread_id, model = run.get("thread_id"), run.get("model")
    return EndedRun(
        run_id=run_id,
        thread_id=thread_id if isinstance(thread_id, str) else "",
        model=model if isinstance(model, str) else "",
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cached_tokens=min(cached or 0, prompt),
    )


def _count(value: Any) -> int | None:
    """A token count: a non-negative int (JSON's true is no count)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None
