"""GetUsage: what a scripted workload of two keys used, through the OpenAI SDK, exactly:
requests (allowed ones, under the model they name, else their run's assistant's, else ""),
tokens, runs and cost, with every grouping and filter; and the requests it refuses."""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import grpc
import openai
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from openai.types.beta.threads import Run

from prism.v1 import admin_pb2
from tests.conftest import AdminClient, IssueKey, Sdk, Upstream

DAY = admin_pb2.USAGE_GROUPING_DAY
ORG = admin_pb2.USAGE_GROUPING_ORG
KEY = admin_pb2.USAGE_GROUPING_KEY
MODEL = admin_pb2.USAGE_GROUPING_MODEL
PRICES = {"gpt-4o": ("2.50", "10.00"), "gpt-4o-mini": ("0.15", "0.60")}


def micros(run: Run) -> int:
    assert run.usage is not None
    input_, output = (Decimal(p) for p in PRICES[run.model])
    exact = run.usage.prompt_tokens * input_ + run.usage.completion_tokens * output
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def stamp(moment: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


def counts(row: admin_pb2.UsageRow) -> tuple[int, int, int, int, int]:
    """requests, input, output, runs, cost in micro-USD"""
    return (
        row.requests,
        row.input_tokens,
        row.output_tokens,
        row.runs,
        round(row.cost_usd * 1_000_000),
    )


def finished(upstream: Upstream, run: Run) -> None:
    """Waits, asking the upstream itself (which the gateway does not count), until `run` has
    finished, so that the one retrieve through the gateway sees its usage."""
    with openai.OpenAI(base_url=upstream.url, api_key=upstream.api_key) as direct:
        direct.beta.threads.runs.poll(run.id, thread_id=run.thread_id, poll_interval_ms=20)


def test_get_usage_totals_match_a_scripted_workload(
    issue_key: IssueKey,
    sdk: Sdk,
    admin: AdminClient,
    shared_upstream: Upstream,
) -> None:
    org, first = issue_key()
    second = admin.CreateKey(admin_pb2.CreateKeyRequest(key=admin_pb2.Key(org_id=org.id)))
    a, b = sdk(first.secret), sdk(second.secret)

    # Key A: 2 requests under gpt-4o (the assistant, and the run its assistant's model
    # prices), 2 under "" (a thread, a retrieve).
    assistant = a.beta.assistants.create(model="gpt-4o")
    thread = a.beta.threads.create(messages=[{"role": "user", "content": "Count these words"}])
    created = a.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    finished(shared_upstream, created)
    run_a = a.beta.threads.runs.retrieve(created.id, thread_id=thread.id)
    # Key B: 1 under gpt-4o-mini (its run's override), 3 under "" (a thread, a retrieve, an
    # assistants listing); a refused request counts nowhere.
    other = b.beta.threads.create(messages=[{"role": "user", "content": "And these"}])
    created = b.beta.threads.runs.create(
        thread_id=other.id, assistant_id=assistant.id, model="gpt-4o-mini"
    )
    finished(shared_upstream, created)
    run_b = b.beta.threads.runs.retrieve(created.id, thread_id=other.id)
    b.beta.assistants.list()
    with pytest.raises(openai.NotFoundError):
        b.beta.threads.retrieve("thread_not_theirs")

    assert run_a.status == run_b.status == "completed"
    assert run_a.usage is not None and run_b.usage is not None
    a_key, b_key = first.key.id, second.key.id
    tokens_a = (run_a.usage.prompt_tokens, run_a.usage.completion_tokens)
    tokens_b = (run_b.usage.prompt_tokens, run_b.usage.completion_tokens)
    today = datetime.now(UTC).strftime("%Y-%m-%d")

    def usage(**query: object) -> admin_pb2.GetUsageResponse:
        return admin.GetUsage(admin_pb2.GetUsageRequest(org_id=org.id, **query))

    everything = usage()
    assert not everything.rows
    assert counts(everything.total) == (
        8,
        tokens_a[0] + tokens_b[0],
        tokens_a[1] + tokens_b[1],
        2,
        micros(run_a) + micros(run_b),
    )

    by_model = usage(group_by=[MODEL])
    assert [(row.model, counts(row)) for row in by_model.rows] == [
        ("", (5, 0, 0, 0, 0)),
        ("gpt-4o", (2, *tokens_a, 1, micros(run_a))),
        ("gpt-4o-mini", (1, *tokens_b, 1, micros(run_b))),
    ]
    assert all(not row.day and not row.key_id and not row.org_id for row in by_model.rows)

    by_key = usage(group_by=[KEY])
    assert [(row.key_id, counts(row)) for row in by_key.rows] == sorted(
        [
            (a_key, (4, *tokens_a, 1, micros(run_a))),
            (b_key, (4, *tokens_b, 1, micros(run_b))),
        ]
    )

    by_key_and_model = usage(group_by=[MODEL, KEY])
    assert [(row.key_id, row.model, row.requests) for row in by_key_and_model.rows] == sorted(
        [(a_key, "", 2), (a_key, "gpt-4o", 2), (b_key, "", 3), (b_key, "gpt-4o-mini", 1)]
    )

    (by_day,) = usage(group_by=[DAY, ORG]).rows
    assert (by_day.day, by_day.org_id) == (today, org.id)
    assert counts(by_day) == counts(everything.total)

    assert counts(usage(key_id=b_key).total) == (4, *tokens_b, 1, micros(run_b))
    assert counts(usage(model="gpt-4o-mini").total) == (1, *tokens_b, 1, micros(run_b))
    yesterday = datetime.now(UTC) - timedelta(days=1)
    assert counts(usage(start_time=stamp(yesterday), end_time=stamp(yesterday)).total) == (
        0,
        0,
        0,
        0,
        0,
    )
    # Without an org filter, every org's usage is counted: this org's is part of it.
    (mine,) = [
        row
        for row in admin.GetUsage(admin_pb2.GetUsageRequest(group_by=[ORG])).rows
        if row.org_id == org.id
    ]
    assert counts(mine) == counts(everything.total)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        (
            {
                "start_time": stamp(datetime(2025, 1, 1, tzinfo=UTC)),
                "end_time": stamp(datetime(2026, 1, 2, tzinfo=UTC)),
            },
            "ask for at most 366",
        ),
        (
            {
                "start_time": stamp(datetime(2025, 3, 2, tzinfo=UTC)),
                "end_time": stamp(datetime(2025, 3, 1, tzinfo=UTC)),
            },
            "is before start_time",
        ),
        ({"group_by": [admin_pb2.USAGE_GROUPING_UNSPECIFIED]}, "is not a grouping"),
    ],
)
def test_get_usage_refuses_bad_ranges_and_groupings(
    query: dict[str, object], says: str, admin: AdminClient
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        admin.GetUsage(admin_pb2.GetUsageRequest(**query))

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in refused.value.details()


@pytest.mark.parametrize(
    ("price", "says"),
    [
        ({"model": ""}, "model is required"),
        ({"model": "m", "input_usd_per_million": -1}, "input_usd_per_million must be"),
        ({"model": "m", "output_usd_per_million": float("inf")}, "output_usd_per_million"),
        ({"model": "m", "cached_input_usd_per_million": float("nan")}, "cached_input_usd"),
    ],
)
def test_set_model_price_refuses_what_is_no_price(
    price: dict[str, object], says: str, admin: AdminClient
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        admin.SetModelPrice(admin_pb2.ModelPrice(**price))

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in refused.value.details()


def test_list_model_prices_shows_the_built_in_table_and_tool_fees(admin: AdminClient) -> None:
    listed = admin.ListModelPrices(admin_pb2.ListModelPricesRequest())

    prices = {price.model: price for price in listed.prices}
    assert [price.model for price in listed.prices] == sorted(prices)
    gpt_4o = prices["gpt-4o"]
    assert (
        gpt_4o.input_usd_per_million,
        gpt_4o.cached_input_usd_per_million,
        gpt_4o.output_usd_per_million,
        gpt_4o.custom,
    ) == (2.5, 1.25, 10.0, False)
    assert {"gpt-4o-mini", "gpt-4.1-nano", "gpt-3.5-turbo", "o1", "o3", "o4-mini"} <= set(prices)
    fees = listed.tool_fees
    assert (
        fees.file_search_usd_per_thousand_calls,
        fees.vector_store_usd_per_gb_day,
        fees.code_interpreter_usd_per_session,
    ) == (2.5, 0.1, 0.03)


def test_set_tool_fees_refuses_a_negative_fee(admin: AdminClient) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        admin.SetToolFees(admin_pb2.ToolFees(code_interpreter_usd_per_session=-0.03))

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "code_interpreter_usd_per_session" in refused.value.details()
