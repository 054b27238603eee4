"""Streams through the gateway: run events relayed in order as the upstream sends them, a
stream the upstream cuts or stalls ends with an `error` event (and says so in the request
log) rather than a hang or a bare cut, and a client that goes away makes the gateway close
its upstream connection instead of leaving it open."""

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import openai
import pytest

from tests.conftest import AdminClient, ControlPlane, DataPlane, Sdk, Upstream
from tests.test_request_logs import logged

QUESTION = "What is the capital of France"
# The engine's offline model answers by quoting the question, a token per message delta.
REPLY = f'You asked: "{QUESTION}".'
EVENTS_BEFORE_REPLY = [
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
]
EVENTS_AFTER_REPLY = [
    "thread.message.completed",
    "thread.run.step.completed",
    "thread.run.completed",
]
RUNS_ROUTE = "/v1/threads/{thread_id}/runs"
# Bounds a wait for something the gateway must do; reached only when it fails to.
PATIENCE_SECONDS = 20


@pytest.fixture
def thread_with_question(client: openai.OpenAI) -> tuple[str, str]:
    """(assistant id, thread id) of a thread whose last user message is QUESTION."""
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Answer briefly.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": QUESTION}])
    return assistant.id, thread.id


def test_run_stream_relays_every_event_in_order(
    client: openai.OpenAI, upstream: Upstream, thread_with_question: tuple[str, str]
) -> None:
    assistant_id, thread_id = thread_with_question

    with client.beta.threads.runs.with_streaming_response.create(
        thread_id=thread_id, assistant_id=assistant_id, stream=True
    ) as response:
        headers = response.headers
        events = list(response.parse())

    deltas = len(events) - len(EVENTS_BEFORE_REPLY) - len(EVENTS_AFTER_REPLY)
    assert deltas > 1  # the reply arrives in pieces, each relayed as it came
    expected = EVENTS_BEFORE_REPLY + ["thread.message.delta"] * deltas + EVENTS_AFTER_REPLY
    assert [event.event for event in events] == expected
    words = [
        part.text.value
        for event in events
        if event.event == "thread.message.delta"
        for part in event.data.delta.content
    ]
    assert "".join(words) == REPLY
    assert events[-1].data.status == "completed"
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-prism-provider"] == urlsplit(upstream.url).netloc
    assert headers["x-request-id"]  # the upstream's own, passed through


@pytest.fixture(scope="module")
def impatient_dataplane(
    start_dataplane: Callable[..., DataPlane], controlplane: ControlPlane
) -> DataPlane:
    return start_dataplane(controlplane.addr, PRISM_UPSTREAM_TIMEOUT="1")


@pytest.mark.parametrize("fault", ["cut_stream_after_events", "stall_stream_after_events"])
def test_a_broken_stream_ends_with_an_error_event_the_log_records(
    fault: str,
    client: openai.OpenAI,
    sdk: Sdk,
    admin: AdminClient,
    impatient_dataplane: DataPlane,
    upstream: Upstream,
    thread_with_question: tuple[str, str],
) -> None:
    """Cut, or silent for longer than PRISM_UPSTREAM_TIMEOUT (1 s here): three events reach
    the client, then an OpenAI error, and the request's log entry names it."""
    assistant_id, thread_id = thread_with_question
    upstream.add_fault(method="POST", path=RUNS_ROUTE, **{fault: 3})
    impatient = sdk(client.api_key, base_url=impatient_dataplane.url, timeout=PATIENCE_SECONDS)

    received = []
    response = impatient.beta.threads.runs.with_raw_response.create(
        thread_id=thread_id, assistant_id=assistant_id, stream=True
    )
    with pytest.raises(openai.APIError) as broken:
        for event in response.parse():
            received.append(event.event)

    code = "upstream_stream_broken" if fault.startswith("cut") else "upstream_timeout"
    assert received == EVENTS_BEFORE_REPLY[:3]
    assert type(broken.value) is openai.APIError
    assert (broken.value.type, broken.value.code) == ("server_error", code)
    (entry,) = logged(admin, response.headers["x-prism-request-id"])
    assert (entry.status, entry.error_type, entry.error_code) == (200, "server_error", code)


@pytest.fixture(scope="module")
def quiet_dataplane(
    start_dataplane: Callable[..., DataPlane], controlplane: ControlPlane
) -> DataPlane:
    """A data plane of this module's own, so its connections to the upstream are only the
    ones the test at hand opens."""
    return start_dataplane(controlplane.addr)


def upstream_connections(dataplane: DataPlane, upstream: Upstream) -> int:
    """How many TCP connections the data plane process holds open to the upstream."""
    pid = dataplane.process.pid
    sockets = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:  # closed while listing
            continue
        if target.startswith("socket:["):
            sockets.add(target[len("socket:[") : -1])
    upstream_port = urlsplit(upstream.url).port
    established = "01"
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].rpartition(":")[2], 16)
        if remote_port == upstream_port and fields[3] == established and fields[9] in sockets:
            count += 1
    return count


def wait_for_no_upstream_connection(dataplane: DataPlane, upstream: Upstream) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while upstream_connections(dataplane, upstream) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream_connections(dataplane, upstream) == 0


async def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


def test_client_leaving_a_download_midway_closes_the_upstream_stream(
    client: openai.OpenAI,
    quiet_dataplane: DataPlane,
    upstream: Upstream,
    tmp_path: Path,
) -> None:
    """The file is far larger than every buffer between the upstream and the client, so the
    upstream is still sending when the client leaves; only the gateway closing its upstream
    connection ends that connection."""
    blob = tmp_path / "large.bin"
    with blob.open("wb") as sink:
        for _ in range(256):
            sink.write(os.urandom(512 * 1024))
    with blob.open("rb") as source:
        uploaded = client.files.create(file=("large.bin", source), purpose="assistants")

    async def download_a_little() -> None:
        # With the same key: the file is its org's own.
        async with (
            openai.AsyncOpenAI(
                base_url=quiet_dataplane.url, api_key=client.api_key, max_retries=0
            ) as sdk,
            sdk.files.with_streaming_response.content(uploaded.id) as response,
        ):
            assert response.headers["content-length"] == str(blob.stat().st_size)
            first = await anext(response.iter_bytes())
            assert first
            assert upstream_connections(quiet_dataplane, upstream) == 1

    asyncio.run(download_a_little())

    wait_for_no_upstream_connection(quiet_dataplane, upstream)


def test_client_leaving_before_the_upstream_answers_closes_the_upstream_request(
    client: openai.OpenAI,
    quiet_dataplane: DataPlane,
    upstream: Upstream,
    thread_with_question: tuple[str, str],
) -> None:
    """The upstream takes a minute to answer; the client gives up once the request has
    reached it, and the gateway must not keep waiting upstream on its behalf."""
    assistant_id, thread_id = thread_with_question
    upstream.add_fault(method="POST", path=RUNS_ROUTE, delay_ms=60_000)

    def forwarded() -> bool:
        return any(r["method"] == "POST" for r in upstream.requests())

    async def give_up_while_waiting() -> None:
        # With the same key as the thread's: it is its org's own.
        async with openai.AsyncOpenAI(
            base_url=quiet_dataplane.url, api_key=client.api_key, max_retries=0
        ) as sdk:
            run = asyncio.create_task(
                sdk.beta.threads.runs.create(
                    thread_id=thread_id, assistant_id=assistant_id, stream=True
                )
            )
            await wait_until(forwarded)
            assert upstream_connections(quiet_dataplane, upstream) == 1
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run

    asyncio.run(give_up_while_waiting())

    wait_for_no_upstream_connection(quiet_dataplane, upstream)
