"""When parts fail: authentication always fails closed (503 with retry-after, nothing
forwarded); PRISM_RATELIMIT_FAIL_OPEN lets authenticated requests through, uncounted and with
a logged warning, only when Redis answers but refuses to update the limiter's counters, and
never a request that may create objects (their owner could not be recorded); and a slow
control plane never stalls the data plane beyond the Check deadline.

These tests stop, pause and fill their own Redis, so they run on a stack of their own.
"""

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import openai
import pytest
import redis

from prism.v1 import admin_pb2
from tests.conftest import AdminClient, ControlPlane, DataPlane, Upstream
from tools import stack


@dataclass
class Stack:
    redis: redis.Redis
    redis_process: stack.Process
    closed: DataPlane
    open: DataPlane
    open_controlplane: ControlPlane
    secret: str
    # An assistant the key's org created through the gateway, and one of another org.
    own_assistant: str
    foreign_assistant: str


def _key(admin: AdminClient, **policy: object) -> str:
    org = admin.CreateOrg(admin_pb2.CreateOrgRequest(org=admin_pb2.Org(display_name="F")))
    return admin.CreateKey(
        admin_pb2.CreateKeyRequest(
            key=admin_pb2.Key(org_id=org.id, policy=admin_pb2.Policy(**policy))
        )
    ).secret


def _sdk(dataplane: DataPlane, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=dataplane.url, api_key=secret, max_retries=0)


@pytest.fixture(scope="module")
def own(
    workdir: Path,
    logs: Path,
    shared_upstream: Upstream,
    start_controlplane: Callable[..., ControlPlane],
    start_dataplane: Callable[..., DataPlane],
) -> Iterator[Stack]:
    port = stack.free_port()
    process = stack.start_redis(port, workdir / "failing-redis", logs)
    url = f"redis://127.0.0.1:{port}/0"
    closed_cp = start_controlplane(REDIS_URL=url)
    open_cp = start_controlplane(REDIS_URL=url, PRISM_RATELIMIT_FAIL_OPEN="true")
    closed = start_dataplane(closed_cp.addr, REDIS_URL=url, PRISM_CHECK_DEADLINE_MS="300")
    opened = start_dataplane(open_cp.addr, REDIS_URL=url)
    with grpc.insecure_channel(closed_cp.addr) as channel:
        admin = AdminClient(channel, closed_cp.admin_token)
        limits = admin_pb2.RateLimits(requests_per_minute=admin_pb2.RateLimit(limit=1000))
        secret = _key(admin, rate_limits=limits)
        other = _key(admin)
    own_assistant = _sdk(closed, secret).beta.assistants.create(model="gpt-4o").id
    foreign_assistant = _sdk(closed, other).beta.assistants.create(model="gpt-4o").id
    client = redis.Redis.from_url(url)
    yield Stack(client, process, closed, opened, open_cp, secret, own_assistant, foreign_assistant)
    client.close()
    process.stop()


@pytest.fixture
def counters_refused(own: Stack) -> Iterator[None]:
    """Redis at its memory limit with no eviction: reads work, every write is refused."""
    own.redis.config_set("maxmemory-policy", "noeviction")
    own.redis.config_set("maxmemory", "1")
    yield
    own.redis.config_set("maxmemory", "0")


def _forwarded(upstream: Upstream, assistant_id: str) -> int:
    return sum(assistant_id in request["path"] for request in upstream.requests())


def test_counters_refused_fail_closed_by_default(
    own: Stack, counters_refused: None, shared_upstream: Upstream
) -> None:
    shared_upstream.clear_requests()

    with pytest.raises(openai.InternalServerError) as refused:
        _sdk(own.closed, own.secret).beta.assistants.retrieve(own.own_assistant)

    assert refused.value.status_code == 503
    assert refused.value.response.headers["retry-after"] == "1"
    assert refused.value.code == "control_plane_unavailable"
    assert _forwarded(shared_upstream, own.own_assistant) == 0


def test_counters_refused_with_fail_open_pass_with_a_warning(
    own: Stack, counters_refused: None, shared_upstream: Upstream
) -> None:
    shared_upstream.clear_requests()

    fetched = _sdk(own.open, own.secret).beta.assistants.retrieve(own.own_assistant)

    assert fetched.id == own.own_assistant
    assert _forwarded(shared_upstream, own.own_assistant) == 1
    assert "rate limits not applied" in own.open_controlplane.process.log()


def test_fail_open_still_authenticates_and_keeps_tenants_apart(
    own: Stack, counters_refused: None, shared_upstream: Upstream
) -> None:
    shared_upstream.clear_requests()
    sdk = _sdk(own.open, own.secret)

    with pytest.raises(openai.NotFoundError):
        sdk.beta.assistants.retrieve(own.foreign_assistant)
    with pytest.raises(openai.AuthenticationError):
        _sdk(own.open, own.secret[:-4] + "AAAA").beta.assistants.retrieve(own.own_assistant)

    assert _forwarded(shared_upstream, own.foreign_assistant) == 0


def _creations(upstream: Upstream, path: str) -> int:
    return sum(r["method"] == "POST" and r["path"] == path for r in upstream.requests())


def test_fail_open_refuses_requests_that_would_create_objects(
    own: Stack, counters_refused: None, shared_upstream: Upstream
) -> None:
    """An object made now could not be recorded as the org's, so its creator could never
    reach it: such requests are refused, not forwarded, while the others still pass."""
    shared_upstream.clear_requests()
    sdk = _sdk(own.open, own.secret)

    with pytest.raises(openai.InternalServerError) as refused:
        sdk.beta.assistants.create(model="gpt-4o")
    # Modifying an assistant may make vector stores inline.
    with pytest.raises(openai.InternalServerError):
        sdk.beta.assistants.update(own.own_assistant, name="renamed")
    fetched = sdk.beta.assistants.retrieve(own.own_assistant)

    assert refused.value.status_code == 503
    assert refused.value.code == "control_plane_unavailable"
    assert refused.value.type == "server_error"
    assert "cannot record new objects" in refused.value.message
    assert refused.value.response.headers["retry-after"] == "1"
    assert _creations(shared_upstream, "/v1/assistants") == 0
    assert _creations(shared_upstream, f"/v1/assistants/{own.own_assistant}") == 0
    assert fetched.id == own.own_assistant
    assert "may create objects, whose owner cannot be recorded" in (
        own.open_controlplane.process.log()
    )


def test_once_writes_work_again_a_refused_creation_succeeds_and_is_owned(
    own: Stack, counters_refused: None
) -> None:
    sdk = _sdk(own.open, own.secret)
    with pytest.raises(openai.InternalServerError):
        sdk.beta.threads.create()
    own.redis.config_set("maxmemory", "0")

    thread = sdk.beta.threads.create()

    assert sdk.beta.threads.retrieve(thread.id).id == thread.id


def test_a_slow_control_plane_is_cut_off_at_the_check_deadline(
    own: Stack, shared_upstream: Upstream
) -> None:
    shared_upstream.clear_requests()
    pause_seconds = 2.0
    # Every Redis client waits, so the control plane's Check hangs until the pause ends.
    own.redis.execute_command("CLIENT", "PAUSE", str(int(pause_seconds * 1000)), "ALL")
    paused = time.monotonic()
    with pytest.raises(openai.InternalServerError) as refused:
        _sdk(own.closed, own.secret).beta.assistants.retrieve(own.own_assistant)
    waited = time.monotonic() - paused
    time.sleep(max(pause_seconds - waited, 0) + 0.1)

    assert refused.value.status_code == 503
    assert refused.value.code == "control_plane_unavailable"
    # Cut off by the 300 ms deadline, well before the pause ends: a bound, not a speed claim.
    assert waited < pause_seconds - 0.5
    assert _forwarded(shared_upstream, own.own_assistant) == 0


def test_a_burst_of_more_checks_than_redis_connections_by_default_is_decided(
    own: Stack, start_dataplane: Callable[..., DataPlane]
) -> None:
    """150 requests at once while Redis is paused for a moment: each of their Checks holds a
    Redis connection until it answers. All pass once it does (redis-py's default pool refused
    every one past 100 with "Too many connections", which reached the client as a 503)."""
    burst = 150
    dataplane = start_dataplane(own.open_controlplane.addr, PRISM_CHECK_DEADLINE_MS="10000")
    with grpc.insecure_channel(own.open_controlplane.addr) as channel:
        secret = _key(AdminClient(channel, own.open_controlplane.admin_token))
    client = _sdk(dataplane, secret)
    client.beta.assistants.list()  # the key's records read, so each Check is one script

    own.redis.execute_command("CLIENT", "PAUSE", "500", "ALL")
    with ThreadPoolExecutor(burst) as pool:
        outcomes = list(pool.map(lambda _: _status(client), range(burst)))

    assert outcomes == [200] * burst


def _status(client: openai.OpenAI) -> int:
    try:
        client.beta.assistants.list()
    except openai.APIStatusError as error:
        return error.status_code
    return 200


def test_redis_down_fails_closed_even_with_fail_open(own: Stack, shared_upstream: Upstream) -> None:
    shared_upstream.clear_requests()
    own.redis_process.stop()

    for dataplane in (own.closed, own.open):
        with pytest.raises(openai.InternalServerError) as refused:
            _sdk(dataplane, own.secret).beta.assistants.retrieve(own.own_assistant)
        assert refused.value.status_code == 503
        assert refused.value.response.headers["retry-after"] == "1"
    assert _forwarded(shared_upstream, own.own_assistant) == 0
