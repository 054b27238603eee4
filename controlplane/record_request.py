"""What Record is told a response showed (RecordInput, the steps in it), the charges of
its runs and steps priced now, and the metrics of what a Record newly charged."""

from collections.abc import Sequence
from dataclasses import dataclass

from controlplane import metrics, pricing
from controlplane.charges import ChargeFacts, Recorded
from controlplane.pricing import RunCharge, StepCharge
from prism.runs import EndedRun


@dataclass(frozen=True)
class StepSeen:
    """A run step seen completed with tool calls."""

    step_id: str
    run_id: str
    thread_id: str
    file_search_calls: int
    code_interpreter_calls: int


@dataclass(frozen=True)
class RecordInput:
    request_id: str
    org_id: str
    key_id: str
    # (id, kind, model, thread): model for assistants and runs, thread for runs and messages.
    objects: Sequence[tuple[str, str, str, str]]
    deleted_ids: Sequence[str]
    runs: Sequence[EndedRun]
    finished: bool
    steps: Sequence[StepSeen] = ()
    # Which Record of the request this is (RecordRequest.sequence); None for the sweeper's.
    sequence: int | None = None


def charges(seen: RecordInput, facts: ChargeFacts) -> tuple[list[RunCharge], list[StepCharge]]:
    """The charges of the runs and steps seen whose runs the org created through the
    gateway; the others charge nobody."""
    # Who created each run: recorded earlier, or by this very Record (a stream shows a run
    # created and ended).
    creators = facts.creators | {
        object_id: seen.key_id for object_id, kind, _, _ in seen.objects if kind == "run"
    }
    runs = [
        _run_charge(run, facts, creators[run.run_id]) for run in seen.runs if run.run_id in creators
    ]
    steps = [
        _step_charge(step, facts, creators[step.run_id])
        for step in seen.steps
        if step.run_id in creators
    ]
    return runs, steps


def _run_charge(run: EndedRun, facts: ChargeFacts, key_id: str) -> RunCharge:
    """The run priced now, charged to key_id, the key that created it."""
    price = pricing.price_of(run.model, facts.prices)
    return RunCharge(
        run_id=run.run_id,
        model=run.model,
        cost_micros=pricing.run_cost(
            price, run.prompt_tokens, run.cached_tokens, run.completion_tokens
        ),
        priced=price is not None,
        prompt_tokens=run.prompt_tokens,
        cached_tokens=run.cached_tokens,
        completion_tokens=run.completion_tokens,
        key_id=key_id,
        total_tokens=run.total_tokens,
    )


def _step_charge(step: StepSeen, facts: ChargeFacts, key_id: str) -> StepCharge:
    return StepCharge(
        step_id=step.step_id,
        thread_id=step.thread_id,
        file_search_calls=step.file_search_calls,
        file_search_micros=pricing.file_search_cost(facts.tool_fees, step.file_search_calls),
        code_interpreter=step.code_interpreter_calls > 0 and bool(step.thread_id),
        code_interpreter_micros=pricing.code_interpreter_cost(facts.tool_fees),
        key_id=key_id,
    )


def count_charged(recorded: Recorded, source: str) -> None:
    """The metrics of what this call newly charged."""
    for charge, new in zip(recorded.charges, recorded.new, strict=True):
        if not new:
            continue
        metrics.RUNS_CHARGED.labels(source).inc()
        metrics.TOKENS.labels(charge.model, "input").inc(charge.prompt_tokens)
        metrics.TOKENS.labels(charge.model, "cached").inc(charge.cached_tokens)
        metrics.TOKENS.labels(charge.model, "output").inc(charge.completion_tokens)
        metrics.COST_USD.labels(charge.model).inc(charge.cost_micros / pricing.MICRO_USD)
        if not charge.priced:
            metrics.UNPRICED_RUNS.labels(charge.model).inc()
    for file_search, code in recorded.step_micros:
        if file_search:
            metrics.COST_USD.labels(pricing.FILE_SEARCH).inc(file_search / pricing.MICRO_USD)
        if code:
            metrics.COST_USD.labels(pricing.CODE_INTERPRETER).inc(code / pricing.MICRO_USD)
