"""Prometheus metrics: the data plane's /metrics sums every worker's counts; denials, latencies
and Check show; no label carries an id, a key or an org; the control plane serves its own
/metrics on PRISM_METRICS_LISTEN, and a taken port stops its start with one line."""

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from prism.v1 import admin_pb2
from tests.conftest import (
    DATAPLANE_TOKEN,
    ControlPlane,
    DataPlane,
    IssueKey,
    Sdk,
    assert_one_clear_line,
    start_and_fail,
)
from tools import stack

WORKERS = 3
# Enough connections at once that the kernel hands them to more than one worker.
CONNECTIONS = 24
CREATE_ASSISTANT = "POST /v1/assistants"
# Bounds a wait for something the data plane must do; reached only when it fails to.
PATIENCE_SECONDS = 20

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page, by name and labels; the page must parse."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture(scope="module")
def workers_dataplane(
    start_dataplane: Callable[..., DataPlane], controlplane: ControlPlane
) -> DataPlane:
    return start_dataplane(controlplane.addr, PRISM_HTTP_WORKERS=str(WORKERS))


def metrics_url(dataplane: DataPlane) -> str:
    return dataplane.base + "/metrics"


def concurrently(dataplane: DataPlane, secret: str, count: int) -> None:
    """`count` assistants created at once, each on a connection of its own."""
    clients = [
        openai.OpenAI(base_url=dataplane.url, api_key=secret, max_retries=0) for _ in range(count)
    ]
    try:
        with ThreadPoolExecutor(count) as pool:
            created = list(
                pool.map(lambda client: client.beta.assistants.create(model="gpt-4o"), clients)
            )
    finally:
        for client in clients:
            client.close()
    assert all(assistant.id.startswith("asst_") for assistant in created)


def test_requests_of_every_worker_are_counted_once(
    workers_dataplane: DataPlane, issue_key: IssueKey
) -> None:
    _, issued = issue_key()
    before = scrape(metrics_url(workers_dataplane))

    concurrently(workers_dataplane, issued.secret, CONNECTIONS)

    # Each scrape is a new connection, answered by whichever worker accepts it: all agree.
    scrapes = [scrape(metrics_url(workers_dataplane)) for _ in range(2 * WORKERS)]
    for after in scrapes:
        labels = {"route": CREATE_ASSISTANT, "method": "POST", "status": "200"}
        assert grew(before, after, "prism_http_requests_total", **labels) == CONNECTIONS
        for histogram in (
            "prism_http_request_duration_seconds",
            "prism_upstream_request_duration_seconds",
        ):
            assert grew(before, after, f"{histogram}_count", route=CREATE_ASSISTANT) == CONNECTIONS
            assert grew(before, after, f"{histogram}_sum", route=CREATE_ASSISTANT) > 0
            assert value(after, f"{histogram}_bucket", route=CREATE_ASSISTANT, le="+Inf") == value(
                after, f"{histogram}_count", route=CREATE_ASSISTANT
            )
        assert grew(before, after, "prism_check_rpc_duration_seconds_count") == CONNECTIONS


def test_workers_keep_their_counts_in_a_private_directory_removed_at_exit(
    start_dataplane: Callable[..., DataPlane], controlplane: ControlPlane, issue_key: IssueKey
) -> None:
    dataplane = start_dataplane(controlplane.addr, PRISM_HTTP_WORKERS=str(WORKERS))
    _, issued = issue_key()
    concurrently(dataplane, issued.secret, CONNECTIONS)
    directory = _metrics_directory(dataplane.process.pid)
    writers = {path.stem.rpartition("_")[2] for path in directory.glob("counter_*.db")}
    # Spread over several workers, yet counted as one data plane.
    assert len(writers) >= 2, writers
    assert directory.name.startswith("prism-dataplane-metrics-")

    dataplane.process.stop()

    assert dataplane.process.popen.returncode == 0
    deadline = time.monotonic() + PATIENCE_SECONDS
    while directory.exists():
        assert time.monotonic() < deadline, f"{directory} outlived the data plane"
        time.sleep(0.05)


def _metrics_directory(pid: int) -> Path:
    """PROMETHEUS_MULTIPROC_DIR as the data plane's workers were started with it."""
    worker = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0]
    environment = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    variable = next(item for item in environment if item.startswith(b"PROMETHEUS_MULTIPROC_DIR="))
    return Path(variable.partition(b"=")[2].decode())


def test_one_worker_serves_metrics_too(dataplane: DataPlane, client: openai.OpenAI) -> None:
    before = scrape(metrics_url(dataplane))

    client.beta.assistants.create(model="gpt-4o")
    client.beta.assistants.list()

    after = scrape(metrics_url(dataplane))
    labels = {"method": "POST", "status": "200"}
    assert grew(before, after, "prism_http_requests_total", route=CREATE_ASSISTANT, **labels) == 1
    listed = {"route": "GET /v1/assistants", "method": "GET", "status": "200"}
    assert grew(before, after, "prism_http_requests_total", **listed) == 1


def test_denials_are_counted_by_their_code(
    workers_dataplane: DataPlane, issue_key: IssueKey, sdk: Sdk
) -> None:
    _, limited = issue_key(
        rate_limits=admin_pb2.RateLimits(requests_per_minute=admin_pb2.RateLimit(limit=1))
    )
    before = scrape(metrics_url(workers_dataplane))

    with pytest.raises(openai.AuthenticationError):
        sdk("sk-prism-" + "x" * 48, base_url=workers_dataplane.url).beta.assistants.list()
    gateway = sdk(limited.secret, base_url=workers_dataplane.url)
    gateway.beta.assistants.list()
    with pytest.raises(openai.RateLimitError):
        gateway.beta.assistants.list()
    with pytest.raises(openai.NotFoundError):
        gateway.get("/nowhere/" + limited.key.id, cast_to=object)

    after = scrape(metrics_url(workers_dataplane))
    assert grew(before, after, "prism_denials_total", code="invalid_api_key") == 1
    assert grew(before, after, "prism_denials_total", code="rate_limit_exceeded") == 1
    assert grew(before, after, "prism_denials_total", code="unknown_url") == 1
    listed = {"route": "GET /v1/assistants", "method": "GET"}
    assert grew(before, after, "prism_http_requests_total", status="200", **listed) == 1
    assert grew(before, after, "prism_http_requests_total", status="401", **listed) == 1
    assert grew(before, after, "prism_http_requests_total", status="429", **listed) == 1
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert grew(before, after, "prism_http_requests_total", **unmatched) == 1
    # A denial is answered before anything is forwarded: no upstream time for it.
    assert (
        grew(
            before,
            after,
            "prism_upstream_request_duration_seconds_count",
            route="GET /v1/assistants",
        )
        == 1
    )


def test_a_method_of_the_clients_own_making_is_counted_as_other(
    workers_dataplane: DataPlane,
) -> None:
    before = scrape(metrics_url(workers_dataplane))

    response = httpx.request("BREW", workers_dataplane.url + "/assistants", timeout=10)

    after = scrape(metrics_url(workers_dataplane))
    assert response.status_code == 404
    unmatched = {"route": "unmatched", "method": "other", "status": "404"}
    assert grew(before, after, "prism_http_requests_total", **unmatched) == 1
    assert all(label != "BREW" for _, labels in after for _, label in labels)


# Ids the gateway, the upstream and the control plane make (`asst_…`, `key_…`, `sk-prism-…`),
# with 16 characters or more after the prefix: label values such as `file_search` are words.
_ID_LIKE = re.compile(r"(asst|thread|msg|run|step|file|vs|key|org|req)[_-][A-Za-z0-9]{16,}|sk-")


def test_no_label_carries_an_id_a_key_or_an_org(
    workers_dataplane: DataPlane, controlplane: ControlPlane, issue_key: IssueKey, sdk: Sdk
) -> None:
    org, issued = issue_key()
    gateway = sdk(issued.secret, base_url=workers_dataplane.url)
    assistant = gateway.beta.assistants.create(model="gpt-4o")
    thread = gateway.beta.threads.create()
    gateway.beta.threads.messages.create(thread.id, role="user", content="hello")
    run = gateway.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    gateway.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        gateway.beta.assistants.retrieve("asst_" + "Z" * 24)
    with pytest.raises(openai.NotFoundError):
        gateway.get(f"/{org.id}/{issued.key.id}", cast_to=object)
    secrets = {
        assistant.id,
        thread.id,
        run.id,
        org.id,
        issued.key.id,
        issued.secret,
        issued.key.display_prefix,
    }

    for url in (metrics_url(workers_dataplane), controlplane.metrics_url):
        samples = scrape(url)
        labels = {label for _, sample_labels in samples for _, label in sample_labels}
        assert labels, url
        for label in labels:
            assert not any(secret in label for secret in secrets), (url, label)
            assert not _ID_LIKE.search(label), (url, label)


def test_the_control_plane_counts_checks_and_their_decisions(
    workers_dataplane: DataPlane, controlplane: ControlPlane, issue_key: IssueKey, sdk: Sdk
) -> None:
    _, issued = issue_key()
    before = scrape(controlplane.metrics_url)

    gateway = sdk(issued.secret, base_url=workers_dataplane.url)
    for _ in range(3):
        gateway.beta.assistants.list()
    with pytest.raises(openai.AuthenticationError):
        sdk("sk-prism-" + "y" * 48, base_url=workers_dataplane.url).beta.assistants.list()

    after = scrape(controlplane.metrics_url)
    assert grew(before, after, "prism_check_decisions_total", result="allowed", code="") == 3
    denied = {"result": "denied", "code": "invalid_api_key"}
    assert grew(before, after, "prism_check_decisions_total", **denied) == 1
    assert grew(before, after, "prism_check_duration_seconds_count") == 4
    assert grew(before, after, "prism_check_duration_seconds_sum") > 0


# A dated snapshot, priced as gpt-4o (USD 2.50 input, 10.00 output per 1M tokens), that no
# other test runs: its counters move for this test's run alone.
SNAPSHOT = "gpt-4o-2024-08-06"


def test_tokens_and_cost_of_a_charged_run_show_by_model(
    workers_dataplane: DataPlane, controlplane: ControlPlane, issue_key: IssueKey, sdk: Sdk
) -> None:
    _, issued = issue_key()
    gateway = sdk(issued.secret, base_url=workers_dataplane.url)
    # A long prompt makes a cost far above the rounding to micro-USD.
    assistant = gateway.beta.assistants.create(model=SNAPSHOT, instructions="think " * 2000)
    thread = gateway.beta.threads.create(messages=[{"role": "user", "content": "Solve 3x = 9"}])
    before = scrape(controlplane.metrics_url)

    run = gateway.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    # Seen ended once more: charged once all the same.
    gateway.beta.threads.runs.retrieve(run.id, thread_id=thread.id)

    after = scrape(controlplane.metrics_url)
    assert run.status == "completed" and run.usage is not None
    assert run.model == SNAPSHOT
    tokens = "prism_tokens_total"
    assert grew(before, after, tokens, model=SNAPSHOT, kind="input") == run.usage.prompt_tokens
    assert grew(before, after, tokens, model=SNAPSHOT, kind="cached") == 0
    output = run.usage.completion_tokens
    assert grew(before, after, tokens, model=SNAPSHOT, kind="output") == output
    cost = (run.usage.prompt_tokens * 2.50 + output * 10.00) / 1_000_000
    assert grew(before, after, "prism_cost_usd_total", model=SNAPSHOT) == pytest.approx(
        cost, abs=1e-6
    )
    assert grew(before, after, "prism_runs_charged_total", source="response") == 1
    assert grew(before, after, "prism_unpriced_runs_total", model=SNAPSHOT) == 0


@pytest.fixture
def good_settings(redis_url: str) -> Iterator[dict[str, str]]:
    yield {
        "REDIS_URL": redis_url,
        "PRISM_GRPC_LISTEN": f"127.0.0.1:{stack.free_port()}",
        "PRISM_METRICS_LISTEN": f"127.0.0.1:{stack.free_port()}",
        "PRISM_ADMIN_TOKEN": "admin-test",
        "PRISM_DATAPLANE_TOKEN": DATAPLANE_TOKEN,
        "PRISM_UPSTREAM_API_KEY": "sk-upstream-test",
    }


def test_a_taken_metrics_port_stops_the_control_plane_with_one_line(
    good_settings: dict[str, str], controlplane: ControlPlane
) -> None:
    taken = controlplane.metrics_url.removeprefix("http://").removesuffix("/metrics")

    result = start_and_fail("controlplane", good_settings | {"PRISM_METRICS_LISTEN": taken})

    assert_one_clear_line(result, "controlplane", 1, f"PRISM_METRICS_LISTEN={taken}")


def test_a_malformed_metrics_address_stops_the_control_plane_with_one_line(
    good_settings: dict[str, str],
) -> None:
    result = start_and_fail("controlplane", good_settings | {"PRISM_METRICS_LISTEN": "9464"})

    assert_one_clear_line(
        result, "controlplane", 2, "configuration error", "PRISM_METRICS_LISTEN", "host:port"
    )
