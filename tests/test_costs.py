"""What runs cost, through the OpenAI SDK: a completed run is charged its tokens times its
model's price exactly once, whether it is seen by polling, by streaming, many times on
several data planes, or only by the control plane's sweeper; the charge shows in
`x-prism-cost` (or a stream's closing SSE comment), in GetUsage and in the spend budgets
are checked against. Prices come from the built-in table, SetModelPrice (on any control
plane) and the family of a dated snapshot; a model without a price costs 0, flagged."""

import secrets
import time
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal

import grpc
import httpx
import openai
import pytest
from openai.types.beta.threads import Run

from prism.v1 import admin_pb2, authorizer_pb2
from tests.conftest import (
    AdminClient,
    AuthorizerClient,
    ControlPlane,
    DataPlane,
    IssueKey,
    Sdk,
)
from tests.fake_chat.server import FakeChat, Reply

# Also on a Redis Cluster (tests/conftest.py).
pytestmark = pytest.mark.redis_cluster

# USD per million input, cached-input and output tokens, as OpenAI publishes them.
GPT_4O = ("2.50", "1.25", "10.00")
GPT_4O_MINI = ("0.15", "0.075", "0.60")
GPT_35_TURBO = ("0.50", "0.50", "1.50")
GPT_4 = ("30.00", "30.00", "60.00")
# Bounds a wait for the sweeper; reached only when it fails.
PATIENCE_SECONDS = 20


def micros(price: tuple[str, str, str], prompt: int, cached: int, completion: int) -> int:
    """The cost the issue defines, computed independently: per-million prices are
    micro-USD per token, rounded half up once."""
    input_, cached_input, output = (Decimal(p) for p in price)
    exact = (prompt - cached) * input_ + cached * cached_input + completion * output
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def usd(cost_micros: int) -> str:
    return f"{Decimal(cost_micros) / 1_000_000:.6f}"


def run_micros(run: Run, price: tuple[str, str, str]) -> int:
    assert run.usage is not None
    details = getattr(run.usage, "prompt_token_details", None) or {}
    cached = details.get("cached_tokens", 0) if isinstance(details, dict) else 0
    return micros(price, run.usage.prompt_tokens, cached, run.usage.completion_tokens)


def usage_of(admin: AdminClient, **query: object) -> admin_pb2.GetUsageResponse:
    return admin.GetUsage(admin_pb2.GetUsageRequest(**query))


def _thread(client: openai.OpenAI, model: str, question: str = "How much is this run") -> tuple:
    assistant = client.beta.assistants.create(model=model, instructions="Answer briefly.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": question}])
    return assistant.id, thread.id


def test_a_polled_run_costs_its_tokens_times_the_price_with_cached_tokens_cheaper(
    issue_key: IssueKey,
    sdk: Sdk,
    fake_provider: tuple[FakeChat, str],
    provider_dataplane: DataPlane,
    admin: AdminClient,
    spend: Callable[[str, str], int],
) -> None:
    org, issued = issue_key()
    client = sdk(issued.secret, base_url=provider_dataplane.url)
    assistant_id, thread_id = _thread(client, "gpt-4o")
    usage = {"prompt_tokens": 40, "completion_tokens": 3, "total_tokens": 43}
    fake_provider[0].script.append(
        Reply(
            text=["A", " few", " cents."],
            usage=usage | {"prompt_tokens_details": {"cached_tokens": 3}},
        )
    )

    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    seen = client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=thread_id)

    assert run.status == "completed" and run.usage is not None
    cost = micros(GPT_4O, run.usage.prompt_tokens, 3, run.usage.completion_tokens)
    assert cost < micros(GPT_4O, run.usage.prompt_tokens, 0, run.usage.completion_tokens)
    assert seen.headers["x-prism-cost"] == usd(cost)
    assert seen.headers["x-prism-model-used"] == "gpt-4o"
    total = usage_of(admin, org_id=org.id).total
    assert (total.runs, total.input_tokens, total.cached_tokens, total.output_tokens) == (
        1,
        run.usage.prompt_tokens,
        3,
        run.usage.completion_tokens,
    )
    assert round(total.cost_usd * 1_000_000) == cost
    assert spend(org.id, f"key:{issued.key.id}") == spend(org.id, "org") == cost


def test_a_run_seen_many_times_on_two_data_planes_is_charged_once(
    issue_key: IssueKey,
    sdk: Sdk,
    admin: AdminClient,
    controlplane: ControlPlane,
    start_dataplane: Callable[..., DataPlane],
    spend: Callable[[str, str], int],
) -> None:
    org, issued = issue_key()
    client = sdk(issued.secret)
    other = sdk(issued.secret, base_url=start_dataplane(controlplane.addr).url)
    assistant_id, thread_id = _thread(client, "gpt-4o-mini")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    cost = run_micros(run, GPT_4O_MINI)

    costs = []
    for seer in (client, other, client, other):
        retrieved = seer.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=thread_id)
        listed = seer.beta.threads.runs.with_raw_response.list(thread_id=thread_id)
        costs += [retrieved.headers["x-prism-cost"], listed.headers["x-prism-cost"]]

    assert costs == [usd(cost)] * 8
    total = usage_of(admin, org_id=org.id).total
    assert total.runs == 1
    assert round(total.cost_usd * 1_000_000) == cost
    assert spend(org.id, "org") == cost


def test_a_streamed_run_is_charged_and_ends_with_its_cost_as_an_sse_comment(
    issue_key: IssueKey, sdk: Sdk, admin: AdminClient, dataplane: DataPlane
) -> None:
    org, issued = issue_key()
    client = sdk(issued.secret)
    assistant_id, thread_id = _thread(client, "gpt-4o")

    # The SDK's stream helper reads the whole stream, comment lines included, unbothered.
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id) as stream:
        stream.until_done()
        final = stream.get_final_run()
    with httpx.stream(
        "POST",
        f"{dataplane.url}/threads/{thread_id}/runs",
        json={"assistant_id": assistant_id, "stream": True},
        headers={"Authorization": f"Bearer {issued.secret}"},
        timeout=30,
    ) as raw:
        headers = raw.headers
        body = raw.read().decode()
    second = client.beta.threads.runs.list(thread_id=thread_id).data[0]

    assert final.status == "completed"
    first_cost = run_micros(final, GPT_4O)
    second_cost = run_micros(second, GPT_4O)
    # Headers go out before the run ends: the cost comes at the end of the stream.
    assert "x-prism-cost" not in headers
    assert body.endswith(
        f"data: [DONE]\n\n: x-prism-cost {usd(second_cost)}\n: x-prism-model-used gpt-4o\n\n"
    )
    total = usage_of(admin, org_id=org.id).total
    assert total.runs == 2
    assert round(total.cost_usd * 1_000_000) == first_cost + second_cost


@pytest.fixture
def sweeping(start_controlplane: Callable[..., ControlPlane]) -> Iterator[ControlPlane]:
    """A control plane sweeping every 0.3 s for runs older than 0.5 s, stopped after the
    test: its sweeps would reach the runs of later tests."""
    controlplane = start_controlplane(
        PRISM_SWEEP_INTERVAL_SECONDS="0.3", PRISM_SWEEP_AFTER_SECONDS="0.5"
    )
    yield controlplane
    controlplane.process.stop()


def test_a_run_nobody_looks_at_again_is_charged_by_the_sweeper(
    issue_key: IssueKey,
    sdk: Sdk,
    admin: AdminClient,
    sweeping: ControlPlane,
    start_dataplane: Callable[..., DataPlane],
    spend: Callable[[str, str], int],
) -> None:
    org, issued = issue_key()
    client = sdk(issued.secret, base_url=start_dataplane(sweeping.addr).url)
    assistant_id, thread_id = _thread(client, "gpt-4o")

    created = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    deadline = time.monotonic() + PATIENCE_SECONDS
    while usage_of(admin, org_id=org.id).total.runs == 0:
        assert time.monotonic() < deadline, "the sweeper never charged the run"
        time.sleep(0.2)
    # Looking at it now shows the charge the sweeper made, and charges nothing more.
    seen = client.beta.threads.runs.with_raw_response.retrieve(created.id, thread_id=thread_id)
    run = seen.parse()

    assert created.status == "queued" and run.status == "completed"
    cost = run_micros(run, GPT_4O)
    assert seen.headers["x-prism-cost"] == usd(cost)
    total = usage_of(admin, org_id=org.id).total
    assert total.runs == 1 and round(total.cost_usd * 1_000_000) == cost
    assert spend(org.id, f"key:{issued.key.id}") == cost


def test_set_model_price_on_any_control_plane_prices_the_next_run(
    client: openai.OpenAI,
    admin: AdminClient,
    start_controlplane: Callable[..., ControlPlane],
) -> None:
    model = f"house-model-{secrets.token_hex(4)}"
    other_cp = start_controlplane()
    with grpc.insecure_channel(other_cp.addr) as channel:
        other_admin = AdminClient(channel, other_cp.admin_token)
        other_admin.SetModelPrice(
            admin_pb2.ModelPrice(
                model=model,
                input_usd_per_million=1.0,
                cached_input_usd_per_million=0.5,
                output_usd_per_million=2.0,
            )
        )
        assistant_id, thread_id = _thread(client, model)
        first = client.beta.threads.runs.create_and_poll(
            thread_id=thread_id, assistant_id=assistant_id
        )
        changed = other_admin.SetModelPrice(
            admin_pb2.ModelPrice(
                model=model,
                input_usd_per_million=100.0,
                cached_input_usd_per_million=50.0,
                output_usd_per_million=200.0,
            )
        )
    second = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id
    )
    first_again = client.beta.threads.runs.with_raw_response.retrieve(first.id, thread_id=thread_id)
    second_seen = client.beta.threads.runs.with_raw_response.retrieve(
        second.id, thread_id=thread_id
    )

    assert changed.custom and changed.input_usd_per_million == 100.0
    # A run keeps the price it was charged at.
    assert first_again.headers["x-prism-cost"] == usd(run_micros(first, ("1", "0.5", "2")))
    assert second_seen.headers["x-prism-cost"] == usd(run_micros(second, ("100", "50", "200")))
    listed = {
        price.model: price
        for price in admin.ListModelPrices(admin_pb2.ListModelPricesRequest()).prices
    }
    assert listed[model].custom and listed[model].output_usd_per_million == 200.0


@pytest.mark.parametrize(
    ("snapshot", "price"),
    [("gpt-4o-2024-08-06", GPT_4O), ("gpt-3.5-turbo-0125", GPT_35_TURBO)],
)
def test_a_dated_snapshot_is_priced_as_its_family(
    snapshot: str, price: tuple[str, str, str], client: openai.OpenAI
) -> None:
    assistant_id, thread_id = _thread(client, snapshot)

    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    seen = client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=thread_id)

    assert seen.headers["x-prism-model-used"] == snapshot
    assert seen.headers["x-prism-cost"] == usd(run_micros(run, price))
    assert run_micros(run, price) > 0


def test_a_model_without_a_price_costs_nothing_and_is_flagged(
    issue_key: IssueKey, sdk: Sdk, admin: AdminClient, controlplane: ControlPlane
) -> None:
    org, issued = issue_key()
    client = sdk(issued.secret)
    assistant_id, thread_id = _thread(client, "no-price-model")

    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    seen = client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=thread_id)
    with grpc.insecure_channel(controlplane.addr) as channel:
        authorizer = AuthorizerClient(channel)
        answer = authorizer.Record(
            authorizer_pb2.RecordRequest(
                grant=authorizer.grant(issued.secret),
                runs=[authorizer_pb2.RunUsage(run_id=run.id, model="no-price-model")],
            )
        )

    assert seen.headers["x-prism-cost"] == "0.000000"
    assert seen.headers["x-prism-model-used"] == "no-price-model"
    (charge,) = answer.runs
    assert (charge.run_id, charge.priced, charge.cost_micros) == (run.id, False, 0)
    # The charge made first (with the run's tokens) is the one answered.
    assert charge.prompt_tokens == run.usage.prompt_tokens > 0
    total = usage_of(admin, org_id=org.id, model="no-price-model").total
    assert (total.runs, total.cost_usd) == (1, 0.0)
    assert total.input_tokens == run.usage.prompt_tokens


def test_every_response_without_a_run_costs_zero(
    client: openai.OpenAI, dataplane: DataPlane
) -> None:
    listed = client.beta.assistants.with_raw_response.list()
    denied = httpx.get(
        f"{dataplane.url}/assistants", headers={"Authorization": "Bearer sk-prism-wrong"}
    )
    unknown = httpx.get(f"{dataplane.url}/no-such-thing")

    assert listed.headers["x-prism-cost"] == "0.000000"
    assert "x-prism-model-used" not in listed.headers
    assert denied.status_code == 401 and denied.headers["x-prism-cost"] == "0.000000"
    assert unknown.status_code == 404 and unknown.headers["x-prism-cost"] == "0.000000"


def test_a_budget_spent_by_runs_refuses_the_next_run(issue_key: IssueKey, sdk: Sdk) -> None:
    # A gpt-4 run bounded to 500 prompt and 256 completion tokens reserves 0.03036 USD; the
    # budget holds that and 0.0001 USD more, which a run of a few dozen tokens spends.
    _, issued = issue_key(budgets=admin_pb2.Budgets(total_usd=0.03046))
    client = sdk(issued.secret)
    assistant_id, thread_id = _thread(client, "gpt-4")
    bounds = {"max_prompt_tokens": 500, "max_completion_tokens": 256}

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, **bounds
    )

    assert run.status == "completed" and run_micros(run, GPT_4) > 100
    # Reading what was paid for still works; only what can add cost is refused.
    assert client.beta.threads.runs.list(thread_id=thread_id).data[0].id == run.id
    with pytest.raises(openai.RateLimitError) as refused:
        client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id, **bounds)
    assert refused.value.code == "insufficient_quota"
    assert "reservation of $0.03036 does not fit in this key's total budget of $0.03046" in (
        refused.value.message
    )


def test_file_search_calls_are_charged_once_per_step(
    issue_key: IssueKey, sdk: Sdk, admin: AdminClient
) -> None:
    org, issued = issue_key()
    client = sdk(issued.secret)
    file = client.files.create(
        file=("handbook.txt", b"Holidays: 25 days a year.\nLunch is at noon.\n"),
        purpose="assistants",
    )
    store = client.vector_stores.create(name="Handbook", file_ids=[file.id])
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Holidays?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    for step in steps:
        client.beta.threads.runs.steps.retrieve(step.id, thread_id=thread.id, run_id=run.id)

    searches = [s for s in steps if s.type == "tool_calls"]
    assert len(searches) == 1
    fees = usage_of(admin, org_id=org.id, model="file_search").total
    # 2.50 USD per thousand calls: one call.
    assert round(fees.cost_usd * 1_000_000) == 2500
    everything = usage_of(admin, org_id=org.id).total
    assert round(everything.cost_usd * 1_000_000) == 2500 + run_micros(run, GPT_4O)


def test_a_code_interpreter_session_is_charged_once_per_thread_and_hour(
    issue_key: IssueKey, admin: AdminClient, controlplane: ControlPlane
) -> None:
    org, issued = issue_key()

    def step(step_id: str, thread_id: str) -> authorizer_pb2.StepToolCalls:
        return authorizer_pb2.StepToolCalls(
            step_id=step_id, run_id="run_x", thread_id=thread_id, code_interpreter_calls=2
        )

    with grpc.insecure_channel(controlplane.addr) as channel:
        authorizer = AuthorizerClient(channel)
        grant = authorizer.grant(issued.secret)
        # Created through the gateway: only its org's own runs are charged.
        authorizer.Record(
            authorizer_pb2.RecordRequest(
                grant=grant,
                objects=[
                    authorizer_pb2.OwnedObject(id="run_x", kind=authorizer_pb2.OBJECT_KIND_RUN)
                ],
            )
        )
        for steps in (
            [step("step_a", "thread_1")],
            [step("step_a", "thread_1"), step("step_b", "thread_1"), step("step_c", "thread_2")],
        ):
            authorizer.Record(authorizer_pb2.RecordRequest(grant=grant, steps=steps))

    fees = usage_of(admin, org_id=org.id, model="code_interpreter").total
    # 0.03 USD a session: one on each thread.
    assert round(fees.cost_usd * 1_000_000) == 2 * 30_000


def test_a_run_is_charged_to_the_key_that_created_it(
    issue_key: IssueKey, sdk: Sdk, admin: AdminClient, spend: Callable[[str, str], int]
) -> None:
    org, creator = issue_key()
    viewer = admin.CreateKey(admin_pb2.CreateKeyRequest(key=admin_pb2.Key(org_id=org.id)))
    client = sdk(creator.secret)
    assistant_id, thread_id = _thread(client, "gpt-4o")
    created = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)

    # Another key of the org is the first to see it end (it may still be running at first).
    run = sdk(viewer.secret).beta.threads.runs.poll(
        created.id, thread_id=thread_id, poll_interval_ms=20
    )

    cost = run_micros(run, GPT_4O)
    assert spend(org.id, f"key:{creator.key.id}") == cost
    assert spend(org.id, f"key:{viewer.key.id}") == 0
    (row,) = [
        row
        for row in usage_of(admin, org_id=org.id, group_by=[admin_pb2.USAGE_GROUPING_KEY]).rows
        if row.runs
    ]
    assert row.key_id == creator.key.id
