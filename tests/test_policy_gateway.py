"""Rate limits and budgets as an OpenAI SDK user meets them through the gateway: OpenAI's
x-ratelimit-* headers, 429s the SDK retries on its own after the time they name, budgets it
does not retry, token limits fed by the runs it completes, and exact admission when several
data-plane workers and control planes share one limit."""

import itertools
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from prism.v1 import admin_pb2
from tests.bursts import burst_statuses
from tests.conftest import ControlPlane, DataPlane, IssueKey
from tests.test_policy_check import _spend, limits

# Also on a Redis Cluster (tests/conftest.py).
pytestmark = pytest.mark.redis_cluster


def _sdk(dataplane: DataPlane, secret: str, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=dataplane.url, api_key=secret, **({"max_retries": 0} | options))


def _counting_sdk(
    dataplane: DataPlane, secret: str, max_retries: int
) -> tuple[openai.OpenAI, list[str]]:
    """A client that notes every HTTP request it sends, retries included."""
    sent: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda request: sent.append(request.url.path)]})
    return _sdk(dataplane, secret, max_retries=max_retries, http_client=http), sent


def test_responses_carry_the_request_limits_state(
    dataplane: DataPlane, issue_key: IssueKey
) -> None:
    _, issued = issue_key(rate_limits=limits(requests_per_minute=20))
    sdk = _sdk(dataplane, issued.secret)

    first = sdk.beta.assistants.with_raw_response.list()
    second = sdk.beta.assistants.with_raw_response.list()

    assert first.headers["x-ratelimit-limit-requests"] == "20"
    assert first.headers["x-ratelimit-remaining-requests"] == "19"
    assert second.headers["x-ratelimit-remaining-requests"] == "18"
    # Two requests take 6 s to free up at 20 a minute; written Go-style, as OpenAI does.
    reset = second.headers["x-ratelimit-reset-requests"]
    assert re.fullmatch(r"\d+(\.\d+)?s", reset) and 3 < float(reset[:-1]) <= 6
    assert "x-ratelimit-limit-tokens" not in first.headers


def test_a_key_without_limits_gets_no_ratelimit_headers(client: openai.OpenAI) -> None:
    response = client.beta.assistants.with_raw_response.list()

    assert not [name for name in response.headers if name.startswith("x-ratelimit-")]


def test_the_sdk_waits_out_a_429_and_retries_on_its_own(
    dataplane: DataPlane, issue_key: IssueKey
) -> None:
    _, issued = issue_key(rate_limits=limits(requests_per_minute=20))
    for _ in range(20):
        _sdk(dataplane, issued.secret).files.list()
    with pytest.raises(openai.RateLimitError) as limited:
        _sdk(dataplane, issued.secret).files.list()
    sdk, sent = _counting_sdk(dataplane, issued.secret, max_retries=2)

    started = time.monotonic()
    retried = sdk.files.with_raw_response.list()
    waited = time.monotonic() - started

    refusal = limited.value
    assert refusal.code == "rate_limit_exceeded"
    assert "requests per minute" in refusal.message
    headers = refusal.response.headers
    retry_ms = int(headers["retry-after-ms"])
    assert 0 < retry_ms <= 3000
    assert headers["retry-after"] == str(-(-retry_ms // 1000))
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert retried.http_response.status_code == 200
    assert retried.retries_taken == 1 and len(sent) == 2
    # The SDK slept for the time the 429 named (the next slot is 3 s after the last).
    assert waited >= 0.5


def test_a_spent_budget_is_not_retried_by_the_sdk(
    dataplane: DataPlane, issue_key: IssueKey, redis_url: str
) -> None:
    org, issued = issue_key(budgets=admin_pb2.Budgets(daily_usd=2))
    _spend(redis_url, org.id, issued.key.id, 2.5)
    sdk, sent = _counting_sdk(dataplane, issued.secret, max_retries=2)

    with pytest.raises(openai.RateLimitError) as refused:
        sdk.beta.assistants.create(model="gpt-4o")

    assert refused.value.code == "insufficient_quota"
    assert refused.value.type == "insufficient_quota"
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert "daily budget of $2.00" in refused.value.message
    assert len(sent) == 1


def test_a_shadow_limit_is_reported_in_headers_and_never_refuses(
    dataplane: DataPlane, issue_key: IssueKey
) -> None:
    _, issued = issue_key(rate_limits=limits(requests_per_minute=(2, True)))
    sdk = _sdk(dataplane, issued.secret)

    responses = [sdk.files.with_raw_response.list() for _ in range(3)]

    assert [r.http_response.status_code for r in responses] == [200, 200, 200]
    assert "x-prism-ratelimit-shadow" not in responses[1].headers
    assert responses[2].headers["x-prism-ratelimit-shadow"] == "key requests_per_minute"
    assert responses[2].headers["x-ratelimit-remaining-requests"] == "0"


def _reset_seconds(go_duration: str) -> float:
    """`1m0s`, `59.98s`, `20ms` in seconds."""
    if go_duration.endswith("ms"):
        return int(go_duration[:-2]) / 1000
    minutes, _, seconds = go_duration.rpartition("m")
    return int(minutes or 0) * 60 + float(seconds[:-1])


def _requests_status(raw: httpx.Response) -> tuple[str, float]:
    headers = raw.headers
    return headers["x-ratelimit-remaining-requests"], _reset_seconds(
        headers["x-ratelimit-reset-requests"]
    )


def test_a_shadow_limit_counts_what_its_enforced_twin_would(
    dataplane: DataPlane, issue_key: IssueKey
) -> None:
    """The same requests, one each in turn, on a key with a shadow limit of 3 a minute and
    on one with the same limit enforced: both report the same state after each, and the
    shadow's requests over the limit (which the twin refuses uncounted) move nothing."""
    _, shadowed = issue_key(rate_limits=limits(requests_per_minute=(3, True)))
    _, enforced = issue_key(rate_limits=limits(requests_per_minute=3))
    shadow_sdk, enforced_sdk = _sdk(dataplane, shadowed.secret), _sdk(dataplane, enforced.secret)

    shadow_states, enforced_states, refused = [], [], 0
    for _ in range(6):
        shadow_states.append(
            _requests_status(shadow_sdk.files.with_raw_response.list().http_response)
        )
        try:
            raw = enforced_sdk.files.with_raw_response.list().http_response
        except openai.RateLimitError as error:
            raw, refused = error.response, refused + 1
        enforced_states.append(_requests_status(raw))

    assert refused == 3
    assert [remaining for remaining, _ in shadow_states] == ["2", "1", "0", "0", "0", "0"]
    assert [r for r, _ in shadow_states] == [r for r, _ in enforced_states]
    for (_, shadow_reset), (_, enforced_reset) in zip(shadow_states, enforced_states, strict=True):
        # Asked a moment apart: the same reset, give or take that moment.
        assert abs(shadow_reset - enforced_reset) < 2
    # Full after 3 requests (60 s), and it only runs down from there: an over-limit request
    # no longer pushes it 20 s further.
    over_limit = [reset for _, reset in shadow_states[2:]]
    assert over_limit[0] <= 60
    assert all(later <= earlier for earlier, later in itertools.pairwise(over_limit))


def test_run_tokens_count_once_and_then_limit_new_runs(
    dataplane: DataPlane, issue_key: IssueKey
) -> None:
    _, issued = issue_key(rate_limits=limits(tokens_per_minute=6000))
    sdk = _sdk(dataplane, issued.secret)
    assistant = sdk.beta.assistants.create(model="gpt-4o", instructions="Answer briefly.")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "What is 2 + 2?"}])

    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    for _ in range(3):  # seen again and again: counted once
        sdk.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    counted_at = time.monotonic()
    after = sdk.beta.assistants.with_raw_response.list()
    elapsed = time.monotonic() - counted_at

    used = run.usage.total_tokens
    remaining = int(after.headers["x-ratelimit-remaining-tokens"])
    assert after.headers["x-ratelimit-limit-tokens"] == "6000"
    # 6000 a minute frees 100 tokens a second; counted twice, it would be 6000 - 2 * used.
    assert 6000 - used <= remaining <= 6000 - used + 100 * (elapsed + 1)


def test_a_spent_token_limit_refuses_new_runs_but_not_reading(
    dataplane: DataPlane, issue_key: IssueKey
) -> None:
    _, issued = issue_key(rate_limits=limits(tokens_per_minute=5))
    sdk = _sdk(dataplane, issued.secret)
    assistant = sdk.beta.assistants.create(model="gpt-4o", instructions="Answer in a sentence.")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Tell me a story."}])
    done = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )

    with pytest.raises(openai.RateLimitError) as refused:
        sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    listed = sdk.beta.threads.messages.with_raw_response.list(thread.id)

    assert done.usage.total_tokens > 5
    assert refused.value.code == "rate_limit_exceeded" and refused.value.type == "tokens"
    assert "tokens per minute" in refused.value.message
    assert int(refused.value.response.headers["retry-after-ms"]) > 0
    assert listed.http_response.status_code == 200
    assert listed.headers["x-ratelimit-remaining-tokens"] == "0"


def test_exactly_the_limit_passes_across_workers_and_control_planes(
    issue_key: IssueKey,
    controlplane: ControlPlane,
    start_controlplane: Callable[..., ControlPlane],
    start_dataplane: Callable[..., DataPlane],
) -> None:
    limit, attempts = 10, 300
    # A slot frees up every 6 s at 10 a minute; the burst takes far less than that.
    _, issued = issue_key(rate_limits=limits(requests_per_minute=limit))
    gateways = [
        start_dataplane(controlplane.addr, PRISM_HTTP_WORKERS="3"),
        start_dataplane(start_controlplane().addr, PRISM_HTTP_WORKERS="2"),
    ]

    started = time.monotonic()
    statuses = burst_statuses(gateways, issued.secret, attempts)
    took = time.monotonic() - started

    assert took < 6, "the burst outlasted one slot's refill; the count below would not be exact"
    assert statuses.count(200) == limit
    assert statuses.count(429) == attempts - limit
