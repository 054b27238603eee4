"""Budgets as an OpenAI SDK user meets them through the gateway: once spent, they refuse
only the requests that can add cost (reads, deletes and cancels still work), and their
refusals show amounts exactly; runs reserve their expected cost, so concurrent runs never
spend past a budget, and what they reserve comes back when they are charged or end without
a run."""

import asyncio
import re
from collections.abc import Callable, Iterator

import openai
import pytest
import redis
from google.protobuf.field_mask_pb2 import FieldMask
from openai.types.beta.threads import Run

from prism import redis_keys
from prism.v1 import admin_pb2
from tests.conftest import (
    AdminClient,
    ControlPlane,
    DataPlane,
    Engine,
    IssueKey,
    Sdk,
    Upstream,
    wait_for,
)
from tests.fake_chat.server import Failure, FakeChat, Reply
from tests.test_policy_check import _spend
from tests.test_sdk_scenarios import WEATHER_TOOL

# A run bounded so (the engine's least max_completion_tokens is 256) reserves, at gpt-4o's
# 2.50 and 10.00 USD per million input and output tokens, 400 * 2.5 + 256 * 10 micro-USD;
# the provider's runs use 400 and 200 tokens, 400 * 2.5 + 200 * 10.
BOUNDS = {"max_prompt_tokens": 400, "max_completion_tokens": 256}
RESERVED_MICROS = 3560
USAGE = {"prompt_tokens": 400, "completion_tokens": 200, "total_tokens": 600}
COST_MICROS = 3000
RESERVATION_REFUSED = re.compile(
    r"this run's reservation of \$0\.00356 does not fit in this key's total budget of "
    r"\$(?P<budget>[\d.]+) \(\$[\d.]+ spent( and \$[\d.]+ reserved by runs under way)?\)"
)


def test_a_spent_budget_still_lets_the_key_read_delete_and_cancel(
    issue_key: IssueKey, sdk: Sdk, redis_url: str
) -> None:
    # Room for the waiting run's reservation (reservations.py's default bounds at gpt-4o's
    # price), then spent.
    org, issued = issue_key(budgets=admin_pb2.Budgets(daily_usd=0.1))
    client = sdk(issued.secret)
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER_TOOL])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])
    waiting = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id
    )
    spare = client.beta.threads.create()
    assert waiting.status == "requires_action"
    _spend(redis_url, org.id, issued.key.id, 0.1005)

    assert client.beta.assistants.retrieve(assistant.id).id == assistant.id
    assert [a.id for a in client.beta.assistants.list()] == [assistant.id]
    assert client.beta.threads.runs.retrieve(waiting.id, thread_id=thread.id).id == waiting.id
    assert client.beta.threads.messages.list(thread.id).data
    cancelled = client.beta.threads.runs.cancel(waiting.id, thread_id=thread.id)
    assert cancelled.status in ("cancelling", "cancelled")
    assert client.beta.threads.delete(spare.id).deleted
    with pytest.raises(openai.RateLimitError) as refused:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)

    assert refused.value.code == "insufficient_quota"
    assert "this key's daily budget of $0.10 is spent ($0.1005 used)" in refused.value.message
    with pytest.raises(openai.RateLimitError):
        client.beta.threads.create()


@pytest.mark.parametrize(
    ("budget_usd", "spent_usd", "shown"),
    [
        (2, 2.5, "budget of $2.00 is spent ($2.50 used)"),
        (0.000001, 0.000002, "budget of $0.000001 is spent ($0.000002 used)"),
        (1234.5, 1234.500001, "budget of $1,234.50 is spent ($1,234.500001 used)"),
    ],
)
def test_a_budget_refusal_shows_its_amounts_exactly(
    issue_key: IssueKey,
    sdk: Sdk,
    redis_url: str,
    budget_usd: float,
    spent_usd: float,
    shown: str,
) -> None:
    org, issued = issue_key(
        org_policy=admin_pb2.Policy(budgets=admin_pb2.Budgets(total_usd=budget_usd))
    )
    _spend(redis_url, org.id, issued.key.id, spent_usd)

    with pytest.raises(openai.RateLimitError) as refused:
        sdk(issued.secret).beta.assistants.create(model="gpt-4o")

    assert f"this org's total {shown}" in refused.value.message


@pytest.fixture
def reserved(redis_url: str) -> Iterator[Callable[[str], dict[str, int]]]:
    """`reserved(org_id)`: what the org's budget reservations hold now, per owner (`org`,
    `key:<id>`), the empty ones left out."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)

    def read(org_id: str) -> dict[str, int]:
        sums = client.hgetall(redis_keys.reserved(org_id))
        return {owner: int(amount) for owner, amount in sums.items() if int(amount)}

    yield read
    client.close()


def _set_total_budget(admin: AdminClient, key_id: str, micro_usd: int) -> None:
    admin.UpdateKey(
        admin_pb2.UpdateKeyRequest(
            key=admin_pb2.Key(
                id=key_id,
                policy=admin_pb2.Policy(budgets=admin_pb2.Budgets(total_usd=micro_usd / 1e6)),
            ),
            update_mask=FieldMask(paths=["policy.budgets"]),
        )
    )


async def _runs_at_once(
    dataplane: DataPlane, secret: str, assistant_id: str, thread_ids: list[str]
) -> list[Run | openai.RateLimitError]:
    """A bounded run on each thread, all started at once and polled to their end."""
    async with openai.AsyncOpenAI(base_url=dataplane.url, api_key=secret, max_retries=0) as sdk:

        async def one(thread_id: str) -> Run | openai.RateLimitError:
            try:
                return await sdk.beta.threads.runs.create_and_poll(
                    thread_id=thread_id, assistant_id=assistant_id, poll_interval_ms=50, **BOUNDS
                )
            except openai.RateLimitError as refused:
                return refused

        return await asyncio.gather(*(one(thread_id) for thread_id in thread_ids))


def test_concurrent_runs_never_spend_past_the_budget(
    fake_provider: tuple[FakeChat, str],
    provider_dataplane: DataPlane,
    issue_key: IssueKey,
    sdk: Sdk,
    admin: AdminClient,
    spend: Callable[[str, str], int],
    reserved: Callable[[str], dict[str, int]],
) -> None:
    """20 runs at once under a budget of 10,000 micro-USD, each reserving 3,560 and costing
    3,000: without reservations all 20 would start (60,000 spent); with them, a run starts
    only while its reservation fits besides what is spent and reserved."""
    chat = fake_provider[0]
    chat.script.clear()
    # Slow enough that the runs overlap.
    chat.script.extend(Reply(text=["Fine", "."], usage=USAGE, delay=0.1) for _ in range(20))
    budget = 10_000
    org, issued = issue_key(budgets=admin_pb2.Budgets(total_usd=budget / 1e6))
    client = sdk(issued.secret, base_url=provider_dataplane.url)
    assistant = client.beta.assistants.create(model="gpt-4o")
    threads = [
        client.beta.threads.create(messages=[{"role": "user", "content": f"Question {n}"}]).id
        for n in range(20)
    ]

    outcomes = asyncio.run(_runs_at_once(provider_dataplane, issued.secret, assistant.id, threads))

    runs = [outcome for outcome in outcomes if isinstance(outcome, Run)]
    refusals = [outcome for outcome in outcomes if isinstance(outcome, openai.RateLimitError)]
    assert len(runs) + len(refusals) == 20
    assert runs and refusals
    assert [run.status for run in runs] == ["completed"] * len(runs)
    # With max_* given, a run costs at most its reservation: nothing overshoots.
    spent = spend(org.id, f"key:{issued.key.id}")
    assert spent == COST_MICROS * len(runs) <= budget
    for refusal in refusals:
        assert refusal.code == "insufficient_quota"
        found = RESERVATION_REFUSED.search(refusal.message)
        assert found and found["budget"] == "0.01", refusal.message
    # Every run was charged, so nothing is reserved any more: a budget with exactly one
    # reservation's room left lets one more run start.
    assert reserved(org.id) == {}
    _set_total_budget(admin, issued.key.id, spent + RESERVED_MICROS)
    chat.script.append(Reply(text=["Again", "."], usage=USAGE))
    again = client.beta.threads.runs.create_and_poll(
        thread_id=threads[0], assistant_id=assistant.id, poll_interval_ms=50, **BOUNDS
    )
    assert again.status == "completed"
    assert reserved(org.id) == {}


def test_a_run_refused_upstream_gives_its_reservation_back(
    issue_key: IssueKey,
    sdk: Sdk,
    upstream: Upstream,
    reserved: Callable[[str], dict[str, int]],
) -> None:
    """A budget with room for exactly one reservation: the first request's run is refused
    upstream, so no run exists, and the request's end releases what it reserved."""
    org, issued = issue_key(budgets=admin_pb2.Budgets(total_usd=RESERVED_MICROS / 1e6))
    client = sdk(issued.secret)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    upstream.add_fault(method="POST", path=f"/v1/threads/{thread.id}/runs", status=500)

    with pytest.raises(openai.InternalServerError):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, **BOUNDS)

    assert reserved(org.id) == {}
    upstream.clear_faults()
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, **BOUNDS)
    assert run.id.startswith("run_")


def test_a_run_failing_upstream_gives_its_reservation_back(
    fake_provider: tuple[FakeChat, str],
    provider_engine: Engine,
    provider_dataplane: DataPlane,
    start_controlplane: Callable[..., ControlPlane],
    issue_key: IssueKey,
    sdk: Sdk,
    reserved: Callable[[str], dict[str, int]],
) -> None:
    """The run is created (and reserves), then fails at its provider before any usage: it
    is never charged, so the sweeper, finding it ended without usage, releases it."""
    chat = fake_provider[0]
    chat.script.clear()
    chat.script.append(Failure(500))
    org, issued = issue_key(budgets=admin_pb2.Budgets(total_usd=RESERVED_MICROS / 1e6))
    client = sdk(issued.secret, base_url=provider_dataplane.url)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50, **BOUNDS
    )

    assert run.status == "failed"
    assert reserved(org.id) == {"org": RESERVED_MICROS, f"key:{issued.key.id}": RESERVED_MICROS}
    sweeping = start_controlplane(
        PRISM_UPSTREAM_URL=provider_engine.url + "/v1",
        PRISM_UPSTREAM_API_KEY=provider_engine.api_key,
        PRISM_SWEEP_INTERVAL_SECONDS="0.2",
        PRISM_SWEEP_AFTER_SECONDS="0.1",
    )
    try:
        wait_for(
            lambda: reserved(org.id) == {}, "the sweeper released the failed run's reservation"
        )
    finally:
        sweeping.process.stop()
    chat.script.append(Reply(text=["Fine", "."], usage=USAGE))
    again = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50, **BOUNDS
    )
    assert again.status == "completed"


@pytest.mark.parametrize("field", ["max_prompt_tokens", "max_completion_tokens"])
def test_a_token_bound_that_is_no_integer_is_a_400_naming_it(
    issue_key: IssueKey, sdk: Sdk, upstream: Upstream, field: str
) -> None:
    _, issued = issue_key(budgets=admin_pb2.Budgets(total_usd=1))
    client = sdk(issued.secret)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create()
    upstream.clear_requests()

    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant.id, **{field: "plenty"}
        )

    assert refused.value.param == field
    assert f"'{field}' must be an integer" in refused.value.message
    assert upstream.requests() == []
