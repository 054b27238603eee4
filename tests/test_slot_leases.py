"""Concurrency slots that heal: a slot is a lease the data plane renews (Authorizer/Renew)
while its request is in flight, so a slot stays taken for as long as a slow request lasts,
and is free within one lease of its data plane dying or its release (the final Record)
being lost; and Renew, as an attacker with the data planes' token meets it, renews only the
slot of the request its own grant names, never takes a slot again, and refuses callers
without the data planes' credential."""

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import grpc
import openai
import pytest

from controlplane.grants import LIFETIME_SECONDS, Grants
from prism.v1 import authorizer_pb2, authorizer_pb2_grpc
from tests.conftest import (
    AuthorizerClient,
    ControlPlane,
    DataPlane,
    IssueKey,
    Sdk,
    Upstream,
    tampered_grant,
)
from tests.test_metrics import grew, scrape
from tests.test_policy_check import limits

LEASE_SECONDS = 2.0
# The default lease (PRISM_SLOT_LEASE_SECONDS unset).
DEFAULT_LEASE_SECONDS = 10.0
# How much later than its lease's end a slot must be seen free: a request's round trip on
# this loaded machine.
MARGIN_SECONDS = 2.0
RUNS = "/v1/threads/{thread_id}/runs"
QUESTION = "What is the capital of France"
# Bounds a wait for something the gateway must do soon; reached only when it fails to.
PATIENCE_SECONDS = 20


@pytest.fixture(scope="module")
def short_lease(start_controlplane: Callable[..., ControlPlane]) -> ControlPlane:
    return start_controlplane(PRISM_SLOT_LEASE_SECONDS=str(LEASE_SECONDS))


@pytest.fixture(scope="module")
def short_lease_gateway(
    start_dataplane: Callable[..., DataPlane], short_lease: ControlPlane
) -> DataPlane:
    return start_dataplane(short_lease.addr)


@pytest.fixture(scope="module")
def channel(short_lease: ControlPlane) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(short_lease.addr) as opened:
        yield opened


@pytest.fixture(scope="module")
def authorizer(channel: grpc.Channel) -> AuthorizerClient:
    return AuthorizerClient(channel)


def wait_for(condition: Callable[[], bool], within: float = PATIENCE_SECONDS) -> None:
    wait_until(condition, time.monotonic() + within)


def wait_until(condition: Callable[[], bool], deadline: float) -> None:
    """Polls the condition until it holds; fails once `deadline` (monotonic) has passed."""
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def passes(client: openai.OpenAI, assistant_id: str) -> bool:
    """Whether a request of the key passes now (429: its slots are taken)."""
    try:
        return client.beta.assistants.retrieve(assistant_id).id == assistant_id
    except openai.RateLimitError as refused:
        assert "concurrent" in refused.message
        return False


def in_background(call: Callable[[], Any]) -> "Future[Any]":
    pool = ThreadPoolExecutor(1)
    running = pool.submit(call)
    pool.shutdown(wait=False)
    return running


def reached_upstream(upstream: Upstream, count: int = 1) -> None:
    wait_for(lambda: sum(r["method"] == "POST" for r in upstream.requests()) >= count)


def streamed_run(client: openai.OpenAI, thread_id: str, assistant_id: str) -> Callable[[], str]:
    def run() -> str:
        with client.beta.threads.runs.create(
            thread_id, assistant_id=assistant_id, stream=True
        ) as stream:
            return str(list(stream)[-1].event)

    return run


def assistant_and_thread(client: openai.OpenAI) -> tuple[str, str]:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": QUESTION}])
    return assistant.id, thread.id


# Through the gateway


def test_a_slow_request_keeps_its_slot_for_many_leases(
    short_lease_gateway: DataPlane, issue_key: IssueKey, sdk: Sdk, upstream: Upstream
) -> None:
    """The upstream holds the run's stream for 4 leases: its slot stays taken throughout,
    renewed by the data plane, and is free as soon as the stream has ended."""
    _, issued = issue_key(rate_limits=limits(concurrent_requests=1))
    client = sdk(issued.secret, short_lease_gateway.url)
    assistant_id, thread_id = assistant_and_thread(client)
    upstream.clear_requests()
    upstream.add_fault(method="POST", path=RUNS, delay_ms=int(4 * LEASE_SECONDS * 1000))

    running = in_background(streamed_run(client, thread_id, assistant_id))
    reached_upstream(upstream)
    held_until = time.monotonic() + 3 * LEASE_SECONDS
    while time.monotonic() < held_until:
        assert not passes(client, assistant_id)
        time.sleep(LEASE_SECONDS / 4)

    assert running.result(timeout=PATIENCE_SECONDS) == "thread.run.completed"
    assert passes(client, assistant_id)


def test_the_slots_of_a_killed_data_plane_are_free_within_a_lease(
    short_lease: ControlPlane,
    start_dataplane: Callable[..., DataPlane],
    issue_key: IssueKey,
    sdk: Sdk,
    upstream: Upstream,
) -> None:
    """Both slots of a key are held by streams a data plane relays when it is SIGKILLed:
    within a lease they are free again, for requests through a data plane started anew."""
    _, issued = issue_key(rate_limits=limits(concurrent_requests=2))
    doomed = start_dataplane(short_lease.addr)
    client = sdk(issued.secret, doomed.url)
    assistant_id, thread_id = assistant_and_thread(client)
    upstream.clear_requests()
    upstream.add_fault(method="POST", path=RUNS, delay_ms=60_000, times=3)
    for _ in range(2):
        in_background(streamed_run(client, thread_id, assistant_id))
    reached_upstream(upstream, 2)
    assert not passes(client, assistant_id)

    doomed.process.popen.kill()
    doomed.process.popen.wait()
    killed_at = time.monotonic()
    again = sdk(issued.secret, start_dataplane(short_lease.addr).url)

    wait_for(
        lambda: passes(again, assistant_id),
        killed_at + LEASE_SECONDS + MARGIN_SECONDS - time.monotonic(),
    )
    # Both slots: one request held in flight, another still passes.
    held = in_background(streamed_run(again.with_options(timeout=3), thread_id, assistant_id))
    reached_upstream(upstream, 3)
    assert passes(again, assistant_id)
    with pytest.raises(openai.APITimeoutError):
        held.result(timeout=PATIENCE_SECONDS)


def test_a_lost_release_frees_its_slot_within_a_lease_of_the_control_plane_coming_back(
    start_controlplane: Callable[..., ControlPlane],
    start_dataplane: Callable[..., DataPlane],
    issue_key: IssueKey,
    sdk: Sdk,
    upstream: Upstream,
) -> None:
    """The control plane (the default lease) is SIGKILLed mid-stream and started again only
    once the stream has ended, so its final Record, which releases the slot, is lost: the
    slot is free within a lease of the control plane being back."""
    _, issued = issue_key(rate_limits=limits(concurrent_requests=1))
    controlplane = start_controlplane()
    client = sdk(issued.secret, start_dataplane(controlplane.addr).url)
    assistant_id, thread_id = assistant_and_thread(client)
    upstream.clear_requests()
    upstream.add_fault(method="POST", path=RUNS, delay_ms=1500)

    running = in_background(streamed_run(client, thread_id, assistant_id))
    reached_upstream(upstream)
    controlplane.process.popen.kill()
    controlplane.process.popen.wait()
    # The stream ends once the data plane has given up on the Record (dataplane/records.py).
    running.exception(timeout=PATIENCE_SECONDS)
    start_controlplane(PRISM_GRPC_LISTEN=controlplane.addr)
    back_at = time.monotonic()

    def free() -> bool:
        try:
            return passes(client, assistant_id)
        except openai.InternalServerError as unavailable:
            # 503 while the data plane's channel reconnects (gRPC's backoff).
            assert unavailable.status_code == 503
            return False

    wait_until(free, back_at + DEFAULT_LEASE_SECONDS + MARGIN_SECONDS)


# Renew over gRPC, as data planes (and attackers with their token) call it


def _check(
    authorizer: AuthorizerClient, secret: str, request_id: str
) -> authorizer_pb2.CheckResponse:
    return authorizer.Check(
        authorizer_pb2.CheckRequest(
            api_key=secret, method="GET", route="GET /v1/assistants", request_id=request_id
        )
    )


def _holds(authorizer: AuthorizerClient, secret: str, request_id: str) -> str:
    """The grant of a request that took one of the key's slots."""
    allowed = _check(authorizer, secret, request_id)
    assert allowed.allowed, allowed.denial
    assert allowed.record_wanted
    assert allowed.slot_lease_ms == LEASE_SECONDS * 1000
    return str(allowed.grant)


def _refused(authorizer: AuthorizerClient, secret: str) -> bool:
    answer = _check(authorizer, secret, "req_probe")
    if answer.allowed:
        authorizer.Record(authorizer_pb2.RecordRequest(grant=answer.grant, finished=True))
        return False
    assert answer.denial.code == "rate_limit_exceeded", answer.denial
    return True


def _renewed(authorizer: AuthorizerClient, grants: list[str]) -> list[bool]:
    return list(authorizer.Renew(authorizer_pb2.RenewRequest(grants=grants)).renewed)


def test_renew_keeps_a_slot_and_never_takes_a_released_or_lapsed_one_again(
    authorizer: AuthorizerClient, issue_key: IssueKey
) -> None:
    _, issued = issue_key(rate_limits=limits(concurrent_requests=1))
    held = _holds(authorizer, issued.secret, "req_held")

    renewed_until = time.monotonic() + 3 * LEASE_SECONDS
    while time.monotonic() < renewed_until:
        assert _renewed(authorizer, [held]) == [True]
        assert _refused(authorizer, issued.secret)
        time.sleep(LEASE_SECONDS / 3)

    authorizer.Record(authorizer_pb2.RecordRequest(grant=held, finished=True))
    assert _renewed(authorizer, [held]) == [False]
    lapsing = _holds(authorizer, issued.secret, "req_lapsing")
    # Not renewed: free once its lease has passed, and then not taken again by its grant.
    wait_for(lambda: not _refused(authorizer, issued.secret), LEASE_SECONDS + MARGIN_SECONDS)
    newer = _holds(authorizer, issued.secret, "req_newer")
    assert _renewed(authorizer, [held, lapsing, newer]) == [False, False, True]
    assert _refused(authorizer, issued.secret)
    assert _renewed(authorizer, []) == []


def test_no_grant_but_its_own_keeps_a_slot(
    authorizer: AuthorizerClient,
    channel: grpc.Channel,
    short_lease: ControlPlane,
    issue_key: IssueKey,
    grant_key: bytes,
) -> None:
    """A's request holds A's only slot and is never renewed. B, with the data planes'
    token, renews all the while with grants it made, changed or has: forged ones, A's
    request named in a grant signed with its own key, an expired grant of A's signed with
    the real one, and its own grant for a request given A's request id. Bare peers and
    wrong credentials renew too. A's slot is free within its lease all the same, and B's
    grant keeps only B's own slot."""
    org_a, a = issue_key(rate_limits=limits(concurrent_requests=1))
    _, b = issue_key(rate_limits=limits(concurrent_requests=1))
    a_grant = _holds(authorizer, a.secret, "req_of_a")
    b_grant = _holds(authorizer, b.secret, "req_of_a")
    forgeries = [
        tampered_grant(b_grant, org_a.id),
        b_grant + "==",
        Grants(b"a key of the attacker's own, 32 bytes").issue(
            org_a.id, a.key.id, "req_of_a", time.time()
        ),
        Grants(grant_key).issue(
            org_a.id, a.key.id, "req_of_a", time.time() - LIFETIME_SECONDS - 60
        ),
        "not-a-grant",
        "",
    ]
    stub = authorizer_pb2_grpc.AuthorizerStub(channel)
    strangers = [(), (("authorization", "Bearer not-the-dataplane-token"),)]
    strangers.append((("authorization", f"Bearer {short_lease.admin_token}"),))

    def a_slot_free() -> bool:
        assert _renewed(authorizer, [*forgeries, b_grant]) == [False] * len(forgeries) + [True]
        for metadata in strangers:
            with pytest.raises(grpc.RpcError) as refused:
                stub.Renew(
                    authorizer_pb2.RenewRequest(grants=[a_grant]), metadata=metadata, timeout=10
                )
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        return not _refused(authorizer, a.secret)

    wait_for(a_slot_free, LEASE_SECONDS + MARGIN_SECONDS)
    assert _refused(authorizer, b.secret)
    assert _renewed(authorizer, [a_grant]) == [False]


def test_renewals_are_counted_by_result(
    authorizer: AuthorizerClient, short_lease: ControlPlane, issue_key: IssueKey
) -> None:
    _, issued = issue_key(rate_limits=limits(concurrent_requests=2))
    held = _holds(authorizer, issued.secret, "req_counted")
    released = _holds(authorizer, issued.secret, "req_released")
    authorizer.Record(authorizer_pb2.RecordRequest(grant=released, finished=True))
    before = scrape(short_lease.metrics_url)

    assert _renewed(authorizer, [held, released, "not-a-grant"]) == [True, False, False]

    after = scrape(short_lease.metrics_url)
    for result in ("renewed", "not_held", "refused"):
        assert grew(before, after, "prism_slot_renewals_total", result=result) == 1, result
