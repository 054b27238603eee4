"""The headers a client sees on a forwarded response: Prism's own and the upstream's."""

import openai

from tests.conftest import Upstream


def test_a_forwarded_response_carries_prism_and_upstream_headers(
    client: openai.OpenAI, shared_upstream: Upstream
) -> None:
    shared_upstream.add_fault(method="GET", path="/v1/assistants", delay_ms=300)

    raw = client.beta.assistants.with_raw_response.list()

    headers = raw.headers
    assert headers["x-prism-request-id"].startswith("req_")
    assert headers["x-prism-provider"] == shared_upstream.url.split("/")[2]
    upstream_ms = float(headers["x-prism-upstream-latency-ms"])
    assert upstream_ms >= 300
    assert float(headers["x-prism-latency-ms"]) >= upstream_ms
    # The upstream's own request id and timing pass through, distinct from Prism's: the
    # engine took a few milliseconds of the 300 the upstream's side held the request.
    assert headers["x-request-id"].startswith("req_")
    assert headers["x-request-id"] != headers["x-prism-request-id"]
    assert 0 <= int(headers["openai-processing-ms"]) < 300
    assert raw.parse().object == "list"


def test_every_request_gets_its_own_request_id(client: openai.OpenAI) -> None:
    ids = {
        client.beta.assistants.with_raw_response.list().headers["x-prism-request-id"]
        for _ in range(5)
    }
    assert len(ids) == 5


def test_the_sdk_beta_header_and_user_agent_reach_the_upstream(
    client: openai.OpenAI, shared_upstream: Upstream
) -> None:
    shared_upstream.clear_requests()

    client.beta.assistants.list(extra_headers={"OpenAI-Beta": "assistants=v2"})

    forwarded = shared_upstream.requests()[-1]["headers"]
    assert forwarded["openai-beta"] == "assistants=v2"
    assert forwarded["user-agent"].startswith("OpenAI/Python")
