"""What a client reads of its rate limits through the gateway: OpenAI's `x-ratelimit-*`
headers on every response (forwarded, refused, or an error after the request was allowed),
the shadow limits it went over, and on a refusal the retry hints the OpenAI SDK obeys:
`retry-after-ms` to wait exactly as long as needed, `x-should-retry: false` not to retry."""

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import openai
import pytest
import redis.asyncio

from controlplane.store import Store
from prism.v1 import admin_pb2
from tests.conftest import ControlPlane, DataPlane, FakeUpstream, IssueKey

REQUESTS_TRIO = ("limit", "remaining", "reset")
# Go's time.Duration as OpenAI prints its reset headers.
GO_DURATION = re.compile(r"0s|[1-9]\d*ms|(?:[1-9]\d*h)?(?:\d+m)?\d+(?:\.\d+)?s")


def limits(**per_minute: int | tuple[int, bool]) -> admin_pb2.RateLimits:
    """`limits(requests_per_minute=3, tokens_per_minute=(100, True))`: a tuple sets shadow."""
    fields = {}
    for name, value in per_minute.items():
        limit, shadow = value if isinstance(value, tuple) else (value, False)
        fields[name] = admin_pb2.RateLimit(limit=limit, shadow=shadow)
    return admin_pb2.RateLimits(**fields)


@pytest.fixture
def upstream(fake_upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    fake_upstream.clear_requests()
    fake_upstream.clear_faults()
    yield fake_upstream
    fake_upstream.clear_faults()


@pytest.fixture
def sdk(dataplane: DataPlane) -> Iterator[Callable[..., openai.OpenAI]]:
    """The SDK with a given key; no retries unless a test asks for them."""
    clients: list[openai.OpenAI] = []

    def make(secret: str, **options: Any) -> openai.OpenAI:
        clients.append(
            openai.OpenAI(base_url=dataplane.url, api_key=secret, **{"max_retries": 0} | options)
        )
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def limit_headers(headers: httpx.Headers, unit: str) -> dict[str, str]:
    return {
        part: headers[f"x-ratelimit-{part}-{unit}"]
        for part in REQUESTS_TRIO
        if f"x-ratelimit-{part}-{unit}" in headers
    }


@pytest.mark.parametrize(
    ("per_minute", "reset"),
    [(1000, "60ms"), (40, "1.5s"), (3, "20s"), (1, "1m0s")],
)
def test_a_forwarded_response_reports_the_requests_limit_as_openai_does(
    issue_key: IssueKey, sdk: Callable[..., openai.OpenAI], per_minute: int, reset: str
) -> None:
    """After a fresh key's first request, the limit is back to its full allowance one
    interval (60 s / limit) later; the reset reads as OpenAI's Go-style durations."""
    _, issued = issue_key(rate_limits=limits(requests_per_minute=per_minute))

    raw = sdk(issued.secret).beta.assistants.with_raw_response.list()

    assert limit_headers(raw.headers, "requests") == {
        "limit": str(per_minute),
        "remaining": str(per_minute - 1),
        "reset": reset,
    }
    assert limit_headers(raw.headers, "tokens") == {}
    assert raw.parse().object == "list"


def test_the_tokens_trio_comes_alone_when_only_tokens_are_limited(
    issue_key: IssueKey, sdk: Callable[..., openai.OpenAI]
) -> None:
    _, issued = issue_key(rate_limits=limits(tokens_per_minute=5000))

    headers = sdk(issued.secret).beta.assistants.with_raw_response.list().headers

    assert limit_headers(headers, "tokens") == {"limit": "5000", "remaining": "5000", "reset": "0s"}
    assert limit_headers(headers, "requests") == {}


def test_no_limit_means_no_limit_headers(
    issue_key: IssueKey, sdk: Callable[..., openai.OpenAI]
) -> None:
    _, issued = issue_key()

    headers = sdk(issued.secret).beta.assistants.with_raw_response.list().headers

    assert not [name for name in headers if name.startswith("x-ratelimit-")]
    assert "x-prism-ratelimit-shadow" not in headers


def test_going_over_a_shadow_limit_is_reported_not_refused(
    issue_key: IssueKey, sdk: Callable[..., openai.OpenAI]
) -> None:
    _, issued = issue_key(
        org_policy=admin_pb2.Policy(rate_limits=limits(requests_per_minute=(1, True))),
        rate_limits=limits(requests_per_minute=(1, True)),
    )
    client = sdk(issued.secret)

    first = client.beta.assistants.with_raw_response.list()
    second = client.beta.assistants.with_raw_response.list()

    assert "x-prism-ratelimit-shadow" not in first.headers
    shadow = second.headers["x-prism-ratelimit-shadow"].split(", ")
    assert sorted(shadow) == ["key requests_per_minute", "org requests_per_minute"]
    assert second.parse().object == "list"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"


def test_a_refusal_says_when_to_retry_and_carries_the_limits(
    issue_key: IssueKey, sdk: Callable[..., openai.OpenAI], upstream: FakeUpstream
) -> None:
    _, issued = issue_key(rate_limits=limits(requests_per_minute=1))
    client = sdk(issued.secret)
    client.beta.assistants.list()
    upstream.clear_requests()

    with pytest.raises(openai.RateLimitError) as refused:
        client.beta.assistants.list()

    headers = refused.value.response.headers
    retry_ms = int(headers["retry-after-ms"])
    assert 55_000 < retry_ms <= 60_000
    # Whole seconds, rounded up: a client honouring it never comes back too early.
    assert headers["retry-after"] == str(-(-retry_ms // 1000))
    assert limit_headers(headers, "requests")["remaining"] == "0"
    assert GO_DURATION.fullmatch(limit_headers(headers, "requests")["reset"])
    assert "x-should-retry" not in headers
    assert headers["x-prism-provider"] == "prism"
    assert upstream.requests() == []


def counting_sdk(dataplane: DataPlane, secret: str, sent: list[str]) -> openai.OpenAI:
    """The SDK with retries on, noting every request it actually sends."""
    http_client = httpx.Client(
        event_hooks={"request": [lambda request: sent.append(str(request.url))]}
    )
    return openai.OpenAI(
        base_url=dataplane.url, api_key=secret, max_retries=3, http_client=http_client
    )


def test_the_sdk_retries_a_rate_limited_request_exactly_when_it_would_pass(
    dataplane: DataPlane, issue_key: IssueKey
) -> None:
    """30 requests a minute: with the burst spent, each request frees the next 2 s later.
    Right after one passes, the SDK is refused, told by `retry-after-ms` to wait about 2 s,
    and its one retry passes; on its own back-off (0.5 s, then 1 s) it would have been
    refused again."""
    _, issued = issue_key(rate_limits=limits(requests_per_minute=30))
    auth = {"authorization": f"Bearer {issued.secret}"}
    with httpx.Client(base_url=dataplane.url, headers=auth) as http:
        for _ in range(40):
            refused = http.get("/assistants")
            if refused.status_code == 429:
                break
        else:
            raise AssertionError("the burst of 30 was never spent")
        time.sleep(int(refused.headers["retry-after-ms"]) / 1000)
        assert http.get("/assistants").status_code == 200
    sent: list[str] = []

    with counting_sdk(dataplane, issued.secret, sent) as client:
        started = time.monotonic()
        listed = client.beta.assistants.list()
        waited = time.monotonic() - started

    assert listed.object == "list"
    assert len(sent) == 2
    assert 1.0 < waited < 3.0


def _spend(redis_url: str, org_id: str, key_id: str, usd: float) -> None:
    """Raises the spend that cost tracking records, through the control plane's store."""

    async def add() -> None:
        client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        async with client:
            await Store(client).add_spend(org_id, key_id, round(usd * 1e6), datetime.now(UTC))

    asyncio.run(add())


def test_the_sdk_does_not_retry_a_spent_budget(
    dataplane: DataPlane, issue_key: IssueKey, redis_url: str, upstream: FakeUpstream
) -> None:
    org, issued = issue_key(budgets=admin_pb2.Budgets(total_usd=1.0))
    _spend(redis_url, org.id, issued.key.id, 1.0)
    sent: list[str] = []

    with (
        counting_sdk(dataplane, issued.secret, sent) as client,
        pytest.raises(openai.RateLimitError) as refused,
    ):
        client.beta.assistants.list()

    assert len(sent) == 1
    assert refused.value.code == "insufficient_quota"
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert "retry-after" not in refused.value.response.headers
    assert upstream.requests() == []


def test_an_upstream_error_carries_the_gateways_limits(
    issue_key: IssueKey, sdk: Callable[..., openai.OpenAI], upstream: FakeUpstream
) -> None:
    _, issued = issue_key(rate_limits=limits(requests_per_minute=5))
    upstream.add_fault(method="GET", path="/v1/assistants", status=500)

    with pytest.raises(openai.InternalServerError) as failed:
        sdk(issued.secret).beta.assistants.list()

    headers = failed.value.response.headers
    assert headers["x-prism-provider"] != "prism"
    assert limit_headers(headers, "requests") == {"limit": "5", "remaining": "4", "reset": "12s"}


@pytest.fixture(scope="module")
def impatient_dataplane(
    start_dataplane: Callable[..., DataPlane], controlplane: ControlPlane
) -> DataPlane:
    return start_dataplane(controlplane.addr, PRISM_UPSTREAM_TIMEOUT="1")


def test_a_gateway_error_after_the_check_carries_the_limits(
    impatient_dataplane: DataPlane, issue_key: IssueKey, upstream: FakeUpstream
) -> None:
    _, issued = issue_key(rate_limits=limits(requests_per_minute=5))
    upstream.add_fault(method="GET", path="/v1/assistants", delay_ms=3000)
    client = openai.OpenAI(base_url=impatient_dataplane.url, api_key=issued.secret, max_retries=0)

    with client, pytest.raises(openai.InternalServerError) as failed:
        client.beta.assistants.list()

    assert failed.value.status_code == 504
    headers = failed.value.response.headers
    assert limit_headers(headers, "requests") == {"limit": "5", "remaining": "4", "reset": "12s"}
