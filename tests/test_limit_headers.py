"""OpenAI's `x-ratelimit-*` headers as the gateway writes them: each trio only where its
limit is set, resets written as OpenAI's Go-style durations, every shadow limit gone over
named, and the client's limits on every response once Check has answered, the upstream's
errors and the gateway's own included. (The limits' states, the retry hints on a 429 and
the SDK obeying them are in test_policy_gateway.py.)"""

from collections.abc import Callable

import httpx
import openai
import pytest

from prism.v1 import admin_pb2
from tests.conftest import ControlPlane, DataPlane, IssueKey, Upstream
from tests.test_policy_check import limits

TRIO = ("limit", "remaining", "reset")


def limit_headers(headers: httpx.Headers, unit: str) -> dict[str, str]:
    return {
        part: headers[f"x-ratelimit-{part}-{unit}"]
        for part in TRIO
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


def test_an_upstream_error_carries_the_gateways_limits(
    issue_key: IssueKey, sdk: Callable[..., openai.OpenAI], upstream: Upstream
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
    impatient_dataplane: DataPlane, issue_key: IssueKey, upstream: Upstream
) -> None:
    _, issued = issue_key(rate_limits=limits(requests_per_minute=5))
    upstream.add_fault(method="GET", path="/v1/assistants", delay_ms=3000)
    client = openai.OpenAI(base_url=impatient_dataplane.url, api_key=issued.secret, max_retries=0)

    with client, pytest.raises(openai.InternalServerError) as failed:
        client.beta.assistants.list()

    assert failed.value.status_code == 504
    headers = failed.value.response.headers
    assert limit_headers(headers, "requests") == {"limit": "5", "remaining": "4", "reset": "12s"}
