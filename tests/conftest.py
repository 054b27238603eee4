"""The suite runs against the real stack: a private redis-server, the control plane over
gRPC, the data plane over HTTP, and the Assistants engine behind the fault proxy as the
upstream, each a process on a free port.

Session fixtures start them once; tests that need a differently configured process
start their own with `start_dataplane` / `start_controlplane` and the shared Redis.

Tests marked `redis_cluster` run twice: on a single Redis (`[single]`) and on a real
3-master Redis Cluster (`[cluster]`), with every process of the stack on it.
"""

import asyncio
import base64
import functools
import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import pytest

from prism import redis_client, redis_keys
from prism.v1 import admin_pb2, admin_pb2_grpc, authorizer_pb2, authorizer_pb2_grpc
from tests.fake_chat.server import FakeChat
from tools import stack


@dataclass
class Upstream:
    """The gateway's upstream in the suite: the engine behind the fault proxy, which records
    every request as the upstream saw it and applies the faults a test injects."""

    url: str
    api_key: str
    process: stack.Process

    @property
    def _control(self) -> str:
        return self.url.removesuffix("/v1") + "/_proxy"

    def requests(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self._control}/requests").json()["requests"]

    def clear_requests(self) -> None:
        httpx.delete(f"{self._control}/requests").raise_for_status()

    def add_fault(self, **fault: Any) -> None:
        """`path` (a template's `{name}` matches one segment), and any of `method`,
        `status`, `delay_ms`, `cut_stream_after_events`, `stall_stream_after_events`,
        `event_delay_ms`, `drop_connection`, `times` (1 unless given)."""
        httpx.post(f"{self._control}/faults", json=fault).raise_for_status()

    def clear_faults(self) -> None:
        httpx.delete(f"{self._control}/faults").raise_for_status()


@dataclass
class ControlPlane:
    addr: str
    admin_token: str
    process: stack.Process
    # http://host:port/metrics
    metrics_url: str


@dataclass
class DataPlane:
    base: str
    process: stack.Process

    @property
    def url(self) -> str:
        return self.base + "/v1"


# The data planes' credential, shared by every control and data plane the suite starts (as
# every plane of one deployment shares it).
DATAPLANE_TOKEN = "dataplane-" + secrets.token_urlsafe(24)


class CredentialedStub:
    """A stub with a bearer credential and a 10 s deadline on every call: `stub.Rpc(req)`."""

    def __init__(self, stub: Any, token: str) -> None:
        self._stub = stub
        self._metadata = (("authorization", f"Bearer {token}"),)

    def __getattr__(self, rpc: str) -> Callable[..., Any]:
        return functools.partial(getattr(self._stub, rpc), metadata=self._metadata, timeout=10)


class AdminClient(CredentialedStub):
    """The Admin stub with the admin token attached to every call: `admin.CreateOrg(req)`."""

    def __init__(self, channel: grpc.Channel, token: str) -> None:
        super().__init__(admin_pb2_grpc.AdminStub(channel), token)


class AuthorizerClient(CredentialedStub):
    """The Authorizer stub as a data plane holds it: with the data planes' token."""

    def __init__(self, channel: grpc.Channel, token: str = DATAPLANE_TOKEN) -> None:
        super().__init__(authorizer_pb2_grpc.AuthorizerStub(channel), token)

    def grant(self, api_key: str) -> str:
        """The grant of an allowed read with the key, a request of its own: what Record and
        FilterOwned present to act for its org."""
        allowed = self.Check(
            authorizer_pb2.CheckRequest(
                api_key=api_key,
                method="GET",
                route="GET /v1/assistants",
                request_id="req_" + secrets.token_hex(16),
            )
        )
        assert allowed.allowed, allowed.denial
        return str(allowed.grant)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def logs(workdir: Path) -> Path:
    return workdir / "logs"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `redis_cluster` run on a single Redis and on a Redis Cluster; those
    marked `redis_cluster_only` on the cluster alone; the others on a single Redis."""
    if "redis_kind" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("redis_cluster_only"):
        kinds = ["cluster"]
    elif metafunc.definition.get_closest_marker("redis_cluster"):
        kinds = ["single", "cluster"]
    else:
        kinds = ["single"]
    metafunc.parametrize("redis_kind", kinds, indirect=True, scope="session")


@pytest.fixture(scope="session")
def redis_kind(request: pytest.FixtureRequest) -> str:
    """`single` or `cluster`: which Redis the stack runs on (see pytest_generate_tests)."""
    return str(request.param)


@pytest.fixture(scope="session")
def single_redis_url(workdir: Path, logs: Path) -> Iterator[str]:
    port = stack.free_port()
    process = stack.start_redis(port, workdir / "redis", logs)
    yield f"redis://127.0.0.1:{port}/0"
    process.stop()


@pytest.fixture(scope="session")
def cluster_redis_url(workdir: Path, logs: Path) -> Iterator[str]:
    """A real Redis Cluster: three masters, the slots spread over them, no replicas."""
    cluster = stack.start_redis_cluster(3, workdir / "redis-cluster", logs)
    yield cluster.url
    cluster.stop()


@pytest.fixture(scope="session")
def process_prefix(redis_kind: str) -> str:
    """Before the names of the processes a stack starts (their logs, the data planes' outbox
    directories): the cluster's stack names none the same as the single Redis's."""
    return "" if redis_kind == "single" else f"{redis_kind}-"


@pytest.fixture(scope="session")
def redis_url(redis_kind: str, request: pytest.FixtureRequest) -> str:
    """The URL every process of the stack is given."""
    return str(request.getfixturevalue(f"{redis_kind}_redis_url"))


@dataclass
class Engine:
    # http://host:port, without /v1
    url: str
    api_key: str
    process: stack.Process


def launch_engine(
    redis_url: str, data_dir: Path, logs: Path, api_key: str, name: str = "engine", **env: str
) -> Engine:
    """An engine process on a free port, taking `api_key`, on `redis_url` with its own data
    directory; `env` adds settings (PRISM_ENGINE_MODELS, say). Stop its process when done."""
    port = stack.free_port()
    settings = {
        "PRISM_ENGINE_LISTEN": f"127.0.0.1:{port}",
        "PRISM_ENGINE_API_KEY": api_key,
        "PRISM_ENGINE_REDIS_URL": redis_url,
        "PRISM_ENGINE_DATA_DIR": str(data_dir),
    } | env
    return Engine(f"http://127.0.0.1:{port}", api_key, stack.start_engine(settings, logs, name))


@pytest.fixture(scope="module")
def fake_provider() -> Iterator[tuple[FakeChat, str]]:
    """A chat provider (and its URL), on its own event loop, whose replies a test scripts
    (known usage, failures)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    chat = FakeChat()
    url = asyncio.run_coroutine_threadsafe(chat.start(), loop).result()
    yield chat, url
    asyncio.run_coroutine_threadsafe(chat.close(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()


@pytest.fixture(scope="module")
def provider_engine(
    fake_provider: tuple[FakeChat, str],
    single_redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    logs: Path,
) -> Iterator[Engine]:
    """An engine routing gpt-4o to `fake_provider`."""
    workdir = tmp_path_factory.mktemp("provider-engine")
    models = workdir / "models.toml"
    models.write_text(f'[models."gpt-4o"]\nbase_url = "{fake_provider[1]}"\n')
    engine = launch_engine(
        # Its own database of the single Redis (a cluster has one database), so that only it
        # (not the suite's engine) works on its runs.
        single_redis_url.rpartition("/")[0] + "/12",
        workdir / "data",
        logs,
        "sk-engine-" + secrets.token_urlsafe(16),
        "provider-engine",
        PRISM_ENGINE_MODELS=str(models),
    )
    yield engine
    engine.process.stop()


@pytest.fixture(scope="module")
def provider_dataplane(
    provider_engine: Engine,
    start_controlplane: Callable[..., ControlPlane],
    start_dataplane: Callable[..., DataPlane],
) -> DataPlane:
    """A data plane whose upstream is `provider_engine`."""
    return _gateway_to(provider_engine, start_controlplane, start_dataplane)


def _gateway_to(
    engine: Engine,
    start_controlplane: Callable[..., ControlPlane],
    start_dataplane: Callable[..., DataPlane],
) -> DataPlane:
    """A data plane whose control plane forwards to `engine`."""
    controlplane = start_controlplane(
        PRISM_UPSTREAM_URL=engine.url + "/v1", PRISM_UPSTREAM_API_KEY=engine.api_key
    )
    return start_dataplane(controlplane.addr)


@pytest.fixture(scope="session")
def engine(redis_url: str, workdir: Path, logs: Path, process_prefix: str) -> Iterator[Engine]:
    """The Assistants engine on the shared Redis, with its own data directory."""
    api_key = "sk-engine-" + secrets.token_urlsafe(24)
    name = f"{process_prefix}engine"
    engine = launch_engine(redis_url, workdir / f"{name}-data", logs, api_key, name)
    yield engine
    engine.process.stop()


@pytest.fixture(scope="session")
def shared_upstream(engine: Engine, logs: Path) -> Iterator[Upstream]:
    port = stack.free_port()
    process = stack.start_fault_proxy(port, engine.url, logs)
    yield Upstream(f"http://127.0.0.1:{port}/v1", engine.api_key, process)
    process.stop()


@pytest.fixture(scope="session")
def start_controlplane(
    redis_url: str, shared_upstream: Upstream, logs: Path, process_prefix: str
) -> Iterator[Callable[..., ControlPlane]]:
    """Starts a control plane on the shared Redis; keyword arguments override its env."""
    started: list[stack.Process] = []

    def start(**env: str) -> ControlPlane:
        settings = {
            "REDIS_URL": redis_url,
            "PRISM_GRPC_LISTEN": f"127.0.0.1:{stack.free_port()}",
            "PRISM_METRICS_LISTEN": f"127.0.0.1:{stack.free_port()}",
            "PRISM_ADMIN_TOKEN": "admin-" + secrets.token_urlsafe(16),
            "PRISM_DATAPLANE_TOKEN": DATAPLANE_TOKEN,
            "PRISM_UPSTREAM_URL": shared_upstream.url,
            "PRISM_UPSTREAM_API_KEY": shared_upstream.api_key,
            # The sweeper's fetches would show among the upstream's recorded requests in
            # the middle of other tests; the tests of the sweeper set their own.
            "PRISM_SWEEP_AFTER_SECONDS": "86400",
            # Likewise its fetches of every org's vector stores; test_storage_fees.py
            # turns it on.
            "PRISM_CHARGE_VECTOR_STORAGE": "false",
        } | env
        name = f"{process_prefix}controlplane-{len(started)}"
        process = stack.start_controlplane(settings, logs, name=name)
        started.append(process)
        metrics_url = f"http://{settings['PRISM_METRICS_LISTEN']}/metrics"
        return ControlPlane(
            settings["PRISM_GRPC_LISTEN"], settings["PRISM_ADMIN_TOKEN"], process, metrics_url
        )

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def start_sweeping(
    start_controlplane: Callable[..., ControlPlane],
) -> Iterator[Callable[[], ControlPlane]]:
    """Starts control planes that charge storage at every 0.2 s sweep; stopped after the
    test, as their sweeps reach every org."""
    started: list[ControlPlane] = []

    def start() -> ControlPlane:
        started.append(
            start_controlplane(
                PRISM_SWEEP_INTERVAL_SECONDS="0.2", PRISM_CHARGE_VECTOR_STORAGE="true"
            )
        )
        return started[-1]

    yield start
    for controlplane in started:
        controlplane.process.stop()


@pytest.fixture(scope="session")
def start_dataplane(
    redis_url: str, workdir: Path, logs: Path, process_prefix: str
) -> Iterator[Callable[..., DataPlane]]:
    """Starts a data plane dialing `controlplane_addr`, with an outbox directory of its own
    unless PRISM_OUTBOX_DIR is given (a restart in its place passes the same); keyword
    arguments override its env."""
    started: list[stack.Process] = []

    def start(controlplane_addr: str, **env: str) -> DataPlane:
        port = stack.free_port()
        name = f"{process_prefix}dataplane-{len(started)}"
        settings = {
            "REDIS_URL": redis_url,
            "PRISM_HTTP_LISTEN": f"127.0.0.1:{port}",
            "PRISM_CONTROLPLANE_ADDR": controlplane_addr,
            "PRISM_DATAPLANE_TOKEN": DATAPLANE_TOKEN,
            "PRISM_OUTBOX_DIR": str(workdir / "outboxes" / name),
        } | env
        process = stack.start_dataplane(settings, logs, name=name)
        started.append(process)
        return DataPlane(f"http://127.0.0.1:{port}", process)

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def engine_client(engine: Engine) -> Iterator[openai.OpenAI]:
    """The official SDK pointed straight at the shared engine with its key; no retries."""
    with openai.OpenAI(base_url=engine.url + "/v1", api_key=engine.api_key, max_retries=0) as sdk:
        yield sdk


@pytest.fixture(scope="session")
def engine_gateway(
    engine: Engine,
    start_controlplane: Callable[..., ControlPlane],
    start_dataplane: Callable[..., DataPlane],
) -> DataPlane:
    """A data plane whose control plane forwards to the shared engine; keys come from
    `issue_key` (the planes share Redis)."""
    return _gateway_to(engine, start_controlplane, start_dataplane)


@pytest.fixture
def engine_http(engine: Engine) -> Iterator[httpx.Client]:
    """Plain HTTP to the engine with its key, for requests the SDK would not send."""
    headers = {"Authorization": f"Bearer {engine.api_key}"}
    with httpx.Client(base_url=engine.url, headers=headers, timeout=30) as plain:
        yield plain


@pytest.fixture(scope="session")
def controlplane(start_controlplane: Callable[..., ControlPlane]) -> ControlPlane:
    return start_controlplane()


@pytest.fixture(scope="session")
def dataplane(start_dataplane: Callable[..., DataPlane], controlplane: ControlPlane) -> DataPlane:
    return start_dataplane(controlplane.addr)


@pytest.fixture(scope="session")
def admin(controlplane: ControlPlane) -> Iterator[AdminClient]:
    with grpc.insecure_channel(controlplane.addr) as channel:
        yield AdminClient(channel, controlplane.admin_token)


IssueKey = Callable[..., tuple[admin_pb2.Org, admin_pb2.IssuedKey]]


@pytest.fixture(scope="session")
def grant_key(redis_url: str) -> bytes:
    """The control planes' signing key, as someone with Redis could read it: what a forger
    without it lacks."""
    client = redis_client.sync_client(redis_url, decode_responses=True)
    try:
        return base64.b64decode(client.get(redis_keys.GRANT_KEY))
    finally:
        client.close()


def tampered_grant(grant: str, org_id: str) -> str:
    """The grant with its org replaced and its signature kept."""
    encoded, _, signature = grant.partition(".")
    payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    payload[1] = org_id
    forged = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    return forged.decode().rstrip("=") + "." + signature


@pytest.fixture(scope="session")
def issue_key(admin: AdminClient) -> IssueKey:
    """Creates a fresh org and a key in it; keyword arguments become the key's Policy."""

    def issue(
        org_policy: admin_pb2.Policy | None = None, **key_policy: Any
    ) -> tuple[admin_pb2.Org, admin_pb2.IssuedKey]:
        org = admin.CreateOrg(
            admin_pb2.CreateOrgRequest(
                org=admin_pb2.Org(display_name="Test org", policy=org_policy)
            )
        )
        issued = admin.CreateKey(
            admin_pb2.CreateKeyRequest(
                key=admin_pb2.Key(
                    org_id=org.id, name="test key", policy=admin_pb2.Policy(**key_policy)
                )
            )
        )
        return org, issued

    return issue


@pytest.fixture
def client(dataplane: DataPlane, issue_key: IssueKey) -> Iterator[openai.OpenAI]:
    """The official SDK pointed at the gateway with a fresh key; no retries, so every
    status the gateway sends is the one the test sees."""
    _, issued = issue_key()
    with openai.OpenAI(base_url=dataplane.url, api_key=issued.secret, max_retries=0) as sdk:
        yield sdk


Sdk = Callable[..., openai.OpenAI]


@pytest.fixture
def sdk(dataplane: DataPlane) -> Iterator[Sdk]:
    """`sdk(secret, base_url=..., **options)`: the SDK with that key, pointed at the gateway
    unless told otherwise; no retries unless `max_retries` is given. Closed after the test."""
    clients: list[openai.OpenAI] = []

    def make(secret: str, base_url: str = dataplane.url, **options: Any) -> openai.OpenAI:
        options.setdefault("max_retries", 0)
        clients.append(openai.OpenAI(base_url=base_url, api_key=secret, **options))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def upstream(shared_upstream: Upstream) -> Iterator[Upstream]:
    """The upstream with no recorded requests and no faults, before and after."""
    shared_upstream.clear_requests()
    shared_upstream.clear_faults()
    yield shared_upstream
    shared_upstream.clear_faults()


@pytest.fixture
def spend(redis_url: str) -> Iterator[Callable[[str, str], int]]:
    """`spend(org_id, owner)`: the all-time spend (micro-USD) budgets see for `owner` (`org`,
    `key:<id>`)."""
    client = redis_client.sync_client(redis_url, decode_responses=True)

    def read(org_id: str, owner: str) -> int:
        return int(client.get(redis_keys.spend(org_id, owner, "total")) or 0)

    yield read
    client.close()


# Bounds a wait for a sweep or the engine's indexing; reached only when it fails.
PATIENCE_SECONDS = 20


def wait_for(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


Resize = Callable[[str, str, int], None]


@pytest.fixture
def resize(redis_url: str) -> Iterator[Resize]:
    """`resize(store_id, file_id, usage_bytes)`: once the engine has indexed the store's file,
    its record claims `usage_bytes`, which the store then reports as its usage (a store's
    usage is its completed files')."""
    engine_redis = redis_client.sync_client(redis_url, decode_responses=True)

    def indexed(key: str) -> bool:
        return json.loads(engine_redis.get(key) or "{}").get("status") == "completed"

    def apply(store_id: str, file_id: str, usage_bytes: int) -> None:
        key = redis_keys.engine_vector_store_file(store_id, file_id)
        wait_for(lambda: indexed(key), f"the engine never indexed {file_id} in {store_id}")
        record = json.loads(engine_redis.get(key))
        engine_redis.set(key, json.dumps({**record, "usage_bytes": usage_bytes}))

    yield apply
    engine_redis.close()


Check = Callable[..., authorizer_pb2.CheckResponse]
# An address inside no range the tests allow, unless a test says otherwise.
CLIENT_IP = "198.51.100.7"


@pytest.fixture(scope="session")
def check(controlplane: ControlPlane) -> Iterator[Check]:
    """Authorizer.Check as the data plane asks it: the presented key, the client's address,
    the route and the models the body names, with the data planes' token."""
    with grpc.insecure_channel(controlplane.addr) as channel:
        stub = AuthorizerClient(channel)

        def call(
            api_key: str, models: Sequence[str] = (), client_ip: str = CLIENT_IP
        ) -> authorizer_pb2.CheckResponse:
            return stub.Check(
                authorizer_pb2.CheckRequest(
                    api_key=api_key,
                    client_ip=client_ip,
                    method="POST",
                    route="POST /v1/assistants",
                    models=list(models),
                    request_id="req_test_check",
                )
            )

        yield call


def start_and_fail(component: str, settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs `python -m <component>` with exactly these Prism variables; it must exit."""
    return subprocess.run(
        [sys.executable, "-m", component],
        cwd=stack.ROOT,
        env=stack.clean_environment(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_clear_line(
    result: subprocess.CompletedProcess[str], component: str, status: int, *says: str
) -> None:
    """The process exited with status, no traceback, and one line of its own saying why."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    ours = [line for line in result.stderr.splitlines() if line.startswith(f"prism {component}:")]
    assert len(ours) == 1, result.stderr
    for fragment in says:
        assert fragment in ours[0]
