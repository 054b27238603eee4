"""What the gateway tells the control plane about the responses it relays (Record), as a
client sees the effect through the SDK: objects a stream creates are its org's at once, an
assistant's new model is the one its runs are checked against, a deleted object is gone,
the tokens of a streamed run count towards tokens-per-minute limits by the time its stream
ends (polled runs: test_policy_gateway.py), and a request's concurrency slot is free as soon as its
response is complete, or once the client has gone away."""

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import openai
import pytest

from prism.v1 import admin_pb2
from tests.conftest import AdminClient, ControlPlane, DataPlane, IssueKey, Upstream
from tests.test_policy_check import limits

T = TypeVar("T")
QUESTION = "What is the capital of France"
# Bounds a wait for something the gateway must do; reached only when it fails to.
PATIENCE_SECONDS = 20
# Tokens per minute: one token comes back every 600 ms, so the tokens a run used are still
# missing (but for one) from the remaining count a moment later.
TPM = 100


def remaining_tokens(client: openai.OpenAI) -> int:
    headers = client.beta.assistants.with_raw_response.list().headers
    return int(headers["x-ratelimit-remaining-tokens"])


# Objects


def test_the_thread_a_stream_creates_is_the_orgs_own_at_once(
    issue_key: IssueKey, sdk: Callable[..., openai.OpenAI]
) -> None:
    _, issued = issue_key()
    _, stranger = issue_key()
    client = sdk(issued.secret)
    assistant = client.beta.assistants.create(model="gpt-4o")

    with client.beta.threads.create_and_run(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": QUESTION}]},
        stream=True,
    ) as stream:
        events = iter(stream)
        created = next(events)
        assert created.event == "thread.created"
        # As soon as the client has the thread's id, the thread is the org's. (The offline
        # model's run may be over by now, so this cannot tell whether the gateway recorded
        # it before relaying the event or at the stream's end.)
        assert client.beta.threads.retrieve(created.data.id).id == created.data.id
        ended = [event.event for event in events][-1]

    assert ended == "thread.run.completed"
    with pytest.raises(openai.NotFoundError):
        sdk(stranger.secret).beta.threads.retrieve(created.data.id)


def test_runs_use_the_model_an_assistant_was_last_given(
    admin: AdminClient, issue_key: IssueKey, sdk: Callable[..., openai.OpenAI]
) -> None:
    """The run names no model, so the gateway checks its assistant's: the one the update
    set, which the gateway learnt from the update's response."""
    _, issued = issue_key(allowed_models=["gpt-4o", "gpt-4o-mini"])
    client = sdk(issued.secret)
    assistant = client.beta.assistants.create(model="gpt-4o")
    client.beta.assistants.update(assistant.id, model="gpt-4o-mini")
    thread = client.beta.threads.create()
    admin.UpdateKey(
        admin_pb2.UpdateKeyRequest(
            key=admin_pb2.Key(
                id=issued.key.id, policy=admin_pb2.Policy(allowed_models=["gpt-4o-mini"])
            ),
            update_mask={"paths": ["policy.allowed_models"]},
        )
    )

    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)

    assert run.model == "gpt-4o-mini"


def test_a_deleted_assistant_is_gone_without_asking_the_upstream(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    assert client.beta.assistants.delete(assistant.id).deleted
    upstream.clear_requests()

    with pytest.raises(openai.NotFoundError) as missing:
        client.beta.assistants.retrieve(assistant.id)

    assert missing.value.response.headers["x-prism-provider"] == "prism"
    assert upstream.requests() == []


# Tokens


def test_a_streamed_runs_tokens_count_by_the_time_the_stream_ends(
    issue_key: IssueKey, sdk: Callable[..., openai.OpenAI]
) -> None:
    _, issued = issue_key(rate_limits=limits(tokens_per_minute=TPM))
    client = sdk(issued.secret)
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Answer briefly.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": QUESTION}])

    with client.beta.threads.runs.create(
        thread.id, assistant_id=assistant.id, stream=True
    ) as stream:
        last = list(stream)[-1]

    assert last.event == "thread.run.completed"
    assert last.data.usage is not None
    used = last.data.usage.total_tokens
    assert TPM - used <= remaining_tokens(client) <= TPM - used + 1


# Concurrency slots


def test_a_slot_is_free_as_soon_as_the_response_is_complete(
    issue_key: IssueKey, sdk: Callable[..., openai.OpenAI]
) -> None:
    """One request in flight at a time, and one after another, of every shape: each finds
    the slot of the one before free."""
    _, issued = issue_key(rate_limits=limits(concurrent_requests=1))
    client = sdk(issued.secret)

    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": QUESTION}])
    with client.beta.threads.runs.create(
        thread.id, assistant_id=assistant.id, stream=True
    ) as stream:
        assert list(stream)[-1].event == "thread.run.completed"
    uploaded = client.files.create(file=("notes.txt", b"some notes"), purpose="assistants")
    assert client.files.content(uploaded.id).read() == b"some notes"
    assert client.beta.assistants.list().data[0].id == assistant.id
    with pytest.raises(openai.NotFoundError):  # the upstream's error
        client.beta.threads.runs.retrieve("run_missing", thread_id=thread.id)
    assert client.beta.assistants.retrieve(assistant.id).id == assistant.id


def test_a_slot_is_held_in_flight_and_freed_when_the_client_leaves(
    issue_key: IssueKey, sdk: Callable[..., openai.OpenAI], upstream: Upstream
) -> None:
    """The upstream takes a minute to start the run's stream; the client gives up after a
    few seconds. Meanwhile its slot is taken; once it has gone, the slot is free again."""
    _, issued = issue_key(rate_limits=limits(concurrent_requests=1))
    client = sdk(issued.secret)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": QUESTION}])
    upstream.clear_requests()
    upstream.add_fault(method="POST", path="/v1/threads/{thread_id}/runs", delay_ms=60_000)
    impatient = client.with_options(timeout=3)

    with ThreadPoolExecutor(1) as pool:
        leaving = pool.submit(
            impatient.beta.threads.runs.create, thread.id, assistant_id=assistant.id, stream=True
        )
        wait_for(lambda: any(r["method"] == "POST" for r in upstream.requests()))
        with pytest.raises(openai.RateLimitError, match="concurrent"):
            client.beta.assistants.retrieve(assistant.id)
        with pytest.raises(openai.APITimeoutError):
            leaving.result()

    def slot_free() -> bool:
        try:
            return client.beta.assistants.retrieve(assistant.id).id == assistant.id
        except openai.RateLimitError:
            return False

    wait_for(slot_free)


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def impatient_dataplane(
    start_dataplane: Callable[..., DataPlane], controlplane: ControlPlane
) -> DataPlane:
    return start_dataplane(controlplane.addr, PRISM_UPSTREAM_TIMEOUT="1")


def test_a_slot_is_free_when_the_gateway_answers_an_error(
    impatient_dataplane: DataPlane,
    issue_key: IssueKey,
    sdk: Callable[..., openai.OpenAI],
    upstream: Upstream,
) -> None:
    _, issued = issue_key(rate_limits=limits(concurrent_requests=1))
    client = sdk(issued.secret, impatient_dataplane.url)
    upstream.add_fault(method="GET", path="/v1/assistants", delay_ms=3000)

    with pytest.raises(openai.InternalServerError) as timed_out:
        client.beta.assistants.list()

    assert timed_out.value.status_code == 504
    assert client.beta.assistants.create(model="gpt-4o").model == "gpt-4o"


def _create(client: openai.OpenAI, kind: str) -> Any:
    if kind == "assistant":
        return client.beta.assistants.with_raw_response.create(model="gpt-4o")
    return client.files.with_raw_response.create(
        file=("notes.txt", b"kept by its creator\n"), purpose="assistants"
    )


CREATED_PATHS = {"assistant": "/v1/assistants", "file": "/v1/files"}


@pytest.fixture
def own_controlplane(
    start_controlplane: Callable[..., ControlPlane],
    start_dataplane: Callable[..., DataPlane],
    issue_key: IssueKey,
    sdk: Callable[..., openai.OpenAI],
) -> tuple[ControlPlane, openai.OpenAI]:
    """A control plane of the test's own, to kill, and a client of a data plane dialing it."""
    controlplane = start_controlplane()
    dataplane = start_dataplane(controlplane.addr)
    _, issued = issue_key()
    return controlplane, sdk(issued.secret, dataplane.url)


def killed_while_upstream_holds(
    upstream: Upstream, controlplane: ControlPlane, path: str, call: Callable[[], T]
) -> "Future[T]":
    """Runs `call`, whose request the upstream holds for 1.5 s on `path`, and SIGKILLs the
    control plane once the request has reached the upstream."""
    upstream.add_fault(method="POST", path=path, delay_ms=1500)
    pool = ThreadPoolExecutor(1)
    running = pool.submit(call)
    pool.shutdown(wait=False)
    wait_for(lambda: any(r["path"] == path for r in upstream.requests()))
    controlplane.process.popen.kill()
    controlplane.process.popen.wait()
    return running


@pytest.mark.parametrize("kind", ["assistant", "file"])
def test_a_creation_the_control_plane_cannot_record_is_undone_and_answered_503(
    kind: str, own_controlplane: tuple[ControlPlane, openai.OpenAI], upstream: Upstream
) -> None:
    """The control plane is killed while the upstream creates the object, and does not come
    back: the client never sees an id it could not use, and the object is gone upstream."""
    controlplane, client = own_controlplane

    creating = killed_while_upstream_holds(
        upstream, controlplane, CREATED_PATHS[kind], lambda: _create(client, kind)
    )

    with pytest.raises(openai.InternalServerError) as failed:
        creating.result()
    assert failed.value.status_code == 503
    assert failed.value.code == "control_plane_unavailable"
    (deleted,) = [r for r in upstream.requests() if r["method"] == "DELETE"]
    assert deleted["path"].startswith(CREATED_PATHS[kind] + "/")
    gone = httpx.get(
        upstream.url.removesuffix("/v1") + deleted["path"],
        headers={"Authorization": f"Bearer {upstream.api_key}", "OpenAI-Beta": "assistants=v2"},
    )
    assert gone.status_code == 404


@pytest.mark.parametrize("kind", ["assistant", "file"])
def test_a_creation_is_recorded_once_the_control_plane_is_back(
    kind: str,
    own_controlplane: tuple[ControlPlane, openai.OpenAI],
    start_controlplane: Callable[..., ControlPlane],
    upstream: Upstream,
) -> None:
    """Killed while the upstream creates the object, the control plane is back within the
    gateway's retries: the client gets the id, and it is its own."""
    controlplane, client = own_controlplane

    creating = killed_while_upstream_holds(
        upstream, controlplane, CREATED_PATHS[kind], lambda: _create(client, kind)
    )
    start_controlplane(PRISM_GRPC_LISTEN=controlplane.addr)

    created = creating.result().parse()
    if kind == "assistant":
        assert client.beta.assistants.retrieve(created.id).id == created.id
    else:
        assert client.files.retrieve(created.id).id == created.id
    assert not any(r["method"] == "DELETE" for r in upstream.requests())


def test_a_streamed_thread_the_control_plane_cannot_record_is_undone_and_the_stream_errs(
    own_controlplane: tuple[ControlPlane, openai.OpenAI], upstream: Upstream
) -> None:
    """The control plane is killed while the upstream starts a thread-and-run stream: the
    stream's first event would name the new thread, so instead of it the client gets an
    `error` event, and the thread is gone upstream."""
    controlplane, client = own_controlplane
    assistant = client.beta.assistants.create(model="gpt-4o")

    def stream() -> list[str]:
        with client.beta.threads.create_and_run(assistant_id=assistant.id, stream=True) as events:
            return [event.event for event in events]

    streaming = killed_while_upstream_holds(upstream, controlplane, "/v1/threads/runs", stream)

    with pytest.raises(openai.APIError) as failed:
        streaming.result()
    assert type(failed.value) is openai.APIError
    assert failed.value.code == "control_plane_unavailable"
    (deleted,) = [r for r in upstream.requests() if r["method"] == "DELETE"]
    assert deleted["path"].startswith("/v1/threads/thread")
