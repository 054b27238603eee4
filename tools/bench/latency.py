"""The bench's first part: what the gateway adds to each request's latency, in front of the
engine.

Starts a private stack whose upstream (the Assistants engine behind the suite's fault
proxy) answers after a fixed latency, then sends the
same requests at a fixed rate twice, straight to the upstream and through the gateway; the
added latency is the difference of the two distributions' percentiles. The gateway is
measured with a key that has no policy and with keys whose key and org have every limit on
(full_policy()), taking turns; so is the control plane's Check RPC alone. Also measured: the
time each streamed event spends in the gateway, the peak throughput with many clients in
flight, the data plane's memory while a 512 MiB file is uploaded through it, and what the
data plane's credential costs each request (the token on the wire and its check). Last, the
engine is timed alone: runs of its offline model, each created and polled until completed,
per run and per run step.
"""

import asyncio
import contextlib
import itertools
import secrets
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from controlplane.callers import CallerInterceptor
from dataplane.spool import Entry, Spool
from prism.v1 import admin_pb2, admin_pb2_grpc, authorizer_pb2, authorizer_pb2_grpc
from tools import stack

from . import setup
from .setup import ADMIN_TOKEN, DATAPLANE_TOKEN

T = TypeVar("T")

UPSTREAM_LATENCY_MS = 20
RATE = 100  # requests per second for the latency runs
DURATION = 10.0  # seconds per latency run
STREAM_RATE = 20
PEAK_CONCURRENCY = 64
PEAK_DURATION = 5.0
UPLOAD_BYTES = 512_000_000  # "512 MB", the upload limit OpenAI documents
CHUNK = 1_000_000
CHECK_WARMUP = 50  # sequential Checks per case before it is timed
CREDENTIAL_CALLS = 2000  # sequential health Checks with and without the token, each
GUARD_CALLS = 20_000  # the token check, in-process
OUTBOX_RECORDS = 20_000  # Records appended to a spool and noted delivered, in-process
# Records in flight at once while the outbox's cost is measured: its spool is not empty,
# so each delivery is noted with a line, as under load.
OUTBOX_IN_FLIGHT = 16
ENGINE_RUNS = 100  # sequential, each created and polled until completed
ENGINE_WARMUP = 5
ENGINE_POLL_SECONDS = 0.005

MODEL = "gpt-4o"
# Seconds an idle client connection is kept: less than the servers' (Hypercorn's 5 s), so the
# client never sends on a connection the server is closing at that moment, which failed
# runs with "Server disconnected without sending a response" whenever a burst had opened
# connections that then sat idle.
KEEPALIVE_EXPIRY = 2.0
DATAPLANE_METADATA = (("authorization", f"Bearer {DATAPLANE_TOKEN}"),)
NEVER_REACHED = 10**9  # every limit of the full policy, per minute or at once
NAME_WIDTH = 48  # of the tables' first column


def full_policy(*, concurrency: bool = True) -> admin_pb2.Policy:
    """Every limit on, each far above what the bench sends so that nothing is refused: the
    cost measured is that of applying them. The allowed entries that match come last, so
    every glob and range is tried. Without `concurrency`, no concurrent_requests limit, so no
    request holds a slot that a Record must release."""
    limit = admin_pb2.RateLimit(limit=NEVER_REACHED)
    return admin_pb2.Policy(
        allowed_models=["o3*", "gpt-4.1*", "gpt-4o*"],
        allowed_ip_ranges=[
            "10.0.0.0/8",
            "192.168.0.0/16",
            "2001:db8::/32",
            "::1/128",
            "127.0.0.0/8",
        ],
        rate_limits=admin_pb2.RateLimits(
            requests_per_minute=limit,
            tokens_per_minute=limit,
            concurrent_requests=limit if concurrency else None,
        ),
        budgets=admin_pb2.Budgets(daily_usd=1e9, monthly_usd=1e9, total_usd=1e9),
    )


@dataclass
class Target:
    """Where requests go: the upstream directly, or the gateway in front of it."""

    name: str
    base: str
    key: str

    def client(self, **limits: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base,
            headers={"authorization": f"Bearer {self.key}", "openai-beta": "assistants=v2"},
            timeout=60,
            limits=httpx.Limits(
                max_connections=limits.get("connections", 200),
                keepalive_expiry=KEEPALIVE_EXPIRY,
            ),
        )


@dataclass(frozen=True)
class Tenant:
    """A bench org and its one key."""

    org_id: str
    key_id: str
    secret: str


@dataclass(frozen=True)
class Tenants:
    """The bench's keys, each in its own org with the same policy as the key."""

    plain: Tenant  # no policy
    limited: Tenant  # full_policy()
    unslotted: Tenant  # full_policy(concurrency=False)


@dataclass(frozen=True)
class Objects:
    """What the latency runs name: objects that the target's key's org owns."""

    assistant: str
    thread: str


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


PERCENTILES = (50, 95, 99)


def table_header(title: str, note: str) -> str:
    columns = " ".join(f"p{p}".rjust(7) for p in PERCENTILES)
    return f"{title:{NAME_WIDTH}} {columns}   {note}"


def table_row(name: str, values: Sequence[float], note: str) -> str:
    columns = " ".join(f"{value:7.2f}" for value in values)
    return f"{name:{NAME_WIDTH}} {columns}   {note}"


async def at_fixed_rate(
    rate: float, duration: float, request: Callable[[], Awaitable[T]]
) -> list[T]:
    """Open loop: request i starts at i/rate whatever the others do, as real traffic would."""
    start = time.perf_counter()
    tasks = []
    for i in range(int(rate * duration)):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(request()))
    return list(await asyncio.gather(*tasks))


async def taking_turns(
    rate: float, duration: float, requests: Sequence[Callable[[], Awaitable[T]]]
) -> list[list[T]]:
    """at_fixed_rate for several requests sent in turn, `rate` in all, each `rate * duration`
    times: compared under the same conditions rather than in windows the machine's load may
    drift between. Per request, its results."""
    turns = itertools.cycle(range(len(requests)))

    async def next_turn() -> tuple[int, T]:
        turn = next(turns)
        return turn, await requests[turn]()

    results = await at_fixed_rate(rate, duration * len(requests), next_turn)
    return [[result for turn, result in results if turn == i] for i in range(len(requests))]


async def timed(send: Awaitable[httpx.Response]) -> float:
    began = time.perf_counter()
    response = await send
    response.raise_for_status()
    return (time.perf_counter() - began) * 1000


async def create_objects(target: Target) -> Objects:
    """An assistant and a thread created through the target: through the gateway, its key's
    org owns them, so requests naming them pass the ownership check."""
    async with target.client() as http:
        assistant = await http.post("/assistants", json={"model": MODEL})
        thread = await http.post("/threads", json={})
    for response in (assistant, thread):
        response.raise_for_status()
    return Objects(assistant.json()["id"], thread.json()["id"])


async def latency_runs(*targets: tuple[Target, Objects]) -> list[dict[str, list[float]]]:
    """Per target, the latencies of every kind of request in REQUESTS; several targets take
    turns, at the kind's rate in all."""
    async with contextlib.AsyncExitStack() as clients:
        sessions = [
            (await clients.enter_async_context(target.client()), objects)
            for target, objects in targets
        ]
        runs: list[dict[str, list[float]]] = [{} for _ in targets]
        for name, (rate, request) in REQUESTS.items():
            found = await taking_turns(
                rate, DURATION, [partial(request, http, objects) for http, objects in sessions]
            )
            for run, samples in zip(runs, found, strict=True):
                run[name] = samples
    return runs


async def assert_limits_applied(target: Target, objects: Objects) -> None:
    """A full-policy key's responses report its limits: they were counted, not skipped."""
    async with target.client() as http:
        response = await http.get(f"/assistants/{objects.assistant}")
    response.raise_for_status()
    limit = str(NEVER_REACHED)
    reported = response.headers.get("x-ratelimit-limit-requests")
    assert reported == limit, f"x-ratelimit-limit-requests is {reported!r}, not {limit}"


async def streamed_run(http: httpx.AsyncClient, assistant: str) -> float:
    """Time until the stream's last byte: every event must pass the gateway."""
    began = time.perf_counter()
    body = {
        "assistant_id": assistant,
        "stream": True,
        "thread": {"messages": [{"role": "user", "content": "stream a short answer please"}]},
    }
    async with http.stream("POST", "/threads/runs", json=body) as response:
        response.raise_for_status()
        async for _ in response.aiter_raw():
            pass
    return (time.perf_counter() - began) * 1000


# The latency runs' requests, each kind with its rate: (rate, request(client, objects) -> ms).
REQUESTS: dict[str, tuple[float, Callable[[httpx.AsyncClient, Objects], Awaitable[float]]]] = {
    "GET /assistants/{id}": (
        RATE,
        lambda http, objects: timed(http.get(f"/assistants/{objects.assistant}")),
    ),
    "POST /threads/{id}/messages": (
        RATE,
        lambda http, objects: timed(
            http.post(f"/threads/{objects.thread}/messages", json={"role": "user", "content": "hi"})
        ),
    ),
    "POST /threads/runs (stream)": (
        STREAM_RATE,
        lambda http, objects: streamed_run(http, objects.assistant),
    ),
}


async def event_arrival_gaps(target: Target, assistant: str, runs: int = 50) -> list[float]:
    """Per event, the ms from the response's first byte until the event arrives.

    Compared between direct and gateway, the difference is the time each event spends
    in the gateway beyond the first byte's."""
    gaps: list[float] = []
    async with target.client() as http:
        for _ in range(runs):
            body = {
                "assistant_id": assistant,
                "stream": True,
                "thread": {"messages": [{"role": "user", "content": "one two three four"}]},
            }
            async with http.stream("POST", "/threads/runs", json=body) as response:
                first: float | None = None
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        now = time.perf_counter()
                        first = first or now
                        gaps.append((now - first) * 1000)
    return gaps


async def peak_throughput(target: Target, assistant: str) -> float:
    """Requests per second with PEAK_CONCURRENCY clients each sending back to back."""
    done = 0
    stop_at = time.perf_counter() + PEAK_DURATION

    async def worker() -> None:
        nonlocal done
        # A client per worker: one httpx client shared by many tasks is itself the
        # bottleneck at this concurrency (encode/httpx#3215), and would hide the gateway's.
        async with target.client(connections=1) as http:
            while time.perf_counter() < stop_at:
                (await http.get(f"/assistants/{assistant}")).raise_for_status()
                done += 1

    await asyncio.gather(*(worker() for _ in range(PEAK_CONCURRENCY)))
    return done / PEAK_DURATION


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def upload_memory(target: Target, pid: int) -> tuple[float, float]:
    """(RSS before, peak RSS growth) of the data plane while UPLOAD_BYTES are uploaded."""
    boundary = secrets.token_hex(16)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        chunk = b"x" * CHUNK
        for _ in range(UPLOAD_BYTES // CHUNK):
            yield chunk
        yield tail

    before = rss_mib(pid)
    peak = before
    finished = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not finished.is_set():
            peak = max(peak, rss_mib(pid))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    async with target.client() as http:
        response = await http.post(
            "/files",
            content=body(),
            headers={
                "content-type": f"multipart/form-data; boundary={boundary}",
                "content-length": str(len(head) + UPLOAD_BYTES + len(tail)),
            },
            timeout=600,
        )
    finished.set()
    await sampler
    response.raise_for_status()
    assert response.json()["bytes"] == UPLOAD_BYTES, response.text
    return before, peak - before


@dataclass(frozen=True)
class CheckSample:
    check_ms: float
    allowed: bool
    # The answer reported a requests-per-minute status: the rate limits were counted.
    limited: bool
    # The Record(finished=true) that released the concurrency slot the Check took, if any.
    release_ms: float | None


def check_request(
    tenant: Tenant, objects: Objects | None, request_id: str
) -> authorizer_pb2.CheckRequest:
    """With objects, what the data plane asks for a run on an owned thread with an owned
    assistant (the request names both and a model, and starts model work); without, what it
    asks for GET /v1/assistants, which names nothing."""
    if objects is None:
        return authorizer_pb2.CheckRequest(
            api_key=tenant.secret,
            client_ip="127.0.0.1",
            method="GET",
            route="GET /v1/assistants",
            request_id=request_id,
        )
    return authorizer_pb2.CheckRequest(
        api_key=tenant.secret,
        client_ip="127.0.0.1",
        method="POST",
        route="POST /v1/threads/{thread_id}/runs",
        models=[MODEL],
        objects=[
            authorizer_pb2.ObjectRef(id=objects.thread, kind=authorizer_pb2.OBJECT_KIND_THREAD),
            authorizer_pb2.ObjectRef(
                id=objects.assistant,
                kind=authorizer_pb2.OBJECT_KIND_ASSISTANT,
                param="assistant_id",
            ),
        ],
        model_object_id=objects.assistant,
        uses_model=True,
        request_id=request_id,
    )


async def record_objects(stub: authorizer_pb2_grpc.AuthorizerStub, tenant: Tenant) -> Objects:
    """An assistant and a thread recorded as the tenant's org's, as the data plane records
    the objects its responses create (with the grant of a Check, whose slot it frees)."""
    objects = Objects("asst_bench" + secrets.token_hex(8), "thread_bench" + secrets.token_hex(8))
    allowed = await stub.Check(
        check_request(tenant, None, "req_bench_setup_" + tenant.org_id),
        timeout=10,
        metadata=DATAPLANE_METADATA,
    )
    await stub.Record(
        authorizer_pb2.RecordRequest(
            grant=allowed.grant,
            finished=True,
            objects=[
                authorizer_pb2.OwnedObject(
                    id=objects.assistant, kind=authorizer_pb2.OBJECT_KIND_ASSISTANT, model=MODEL
                ),
                authorizer_pb2.OwnedObject(
                    id=objects.thread, kind=authorizer_pb2.OBJECT_KIND_THREAD
                ),
            ],
        ),
        timeout=10,
        metadata=DATAPLANE_METADATA,
    )
    return objects


async def check_runs(
    controlplane: str, cases: dict[str, tuple[Tenant, bool]]
) -> dict[str, list[CheckSample]]:
    """Check alone, over one reused grpc.aio channel as the data plane calls it; the cases,
    (tenant, whether the request names two objects its org owns), take turns at RATE in all.
    A Check that takes a concurrency slot is followed by the Record that releases it."""
    ids = itertools.count()
    calls: list[Callable[[], Awaitable[CheckSample]]] = []
    async with grpc.aio.insecure_channel(controlplane) as channel:
        stub = authorizer_pb2_grpc.AuthorizerStub(channel)

        async def check(tenant: Tenant, objects: Objects | None) -> CheckSample:
            request = check_request(tenant, objects, f"req_bench_check_{next(ids)}")
            began = time.perf_counter()
            answer = await stub.Check(request, timeout=10, metadata=DATAPLANE_METADATA)
            check_ms = (time.perf_counter() - began) * 1000
            release_ms = None
            if answer.record_wanted:
                began = time.perf_counter()
                await stub.Record(
                    authorizer_pb2.RecordRequest(grant=answer.grant, finished=True),
                    timeout=10,
                    metadata=DATAPLANE_METADATA,
                )
                release_ms = (time.perf_counter() - began) * 1000
            return CheckSample(check_ms, answer.allowed, answer.HasField("requests"), release_ms)

        for tenant, named in cases.values():
            objects = await record_objects(stub, tenant) if named else None
            # A key's first Check on a control plane also reads its records.
            for _ in range(CHECK_WARMUP):
                await check(tenant, objects)
            calls.append(partial(check, tenant, objects))
        found = await taking_turns(RATE, DURATION, calls)
    return dict(zip(cases, found, strict=True))


@dataclass(frozen=True)
class _CallDetails:
    """What gRPC hands a server interceptor about a call."""

    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


async def credential_cost(controlplane: str) -> tuple[list[float], list[float], float]:
    """What proving it is a data plane costs a request, in µs: the round trip of an RPC
    carrying the `authorization` metadata and of the same RPC without it (the health Check,
    which no credential guards, the two alternating over one channel), and the control
    plane's check of the token alone, in-process, per call (mean)."""
    with_token: list[float] = []
    without: list[float] = []
    async with grpc.aio.insecure_channel(controlplane) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check
        request = health_pb2.HealthCheckRequest()
        for i in range(CHECK_WARMUP + CREDENTIAL_CALLS):
            for metadata, samples in ((DATAPLANE_METADATA, with_token), ((), without)):
                began = time.perf_counter()
                await health(request, metadata=metadata, timeout=10)
                if i >= CHECK_WARMUP:
                    samples.append((time.perf_counter() - began) * 1_000_000)

    guard = CallerInterceptor("bench-admin", DATAPLANE_TOKEN, None, client_certificates=False)  # type: ignore[arg-type]
    details = _CallDetails("/prism.v1.Authorizer/Check", DATAPLANE_METADATA)
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: None)

    async def continuation(_: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        return handler

    async def guarded() -> float:
        began = time.perf_counter()
        for _ in range(GUARD_CALLS):
            assert await guard.intercept_service(continuation, details) is handler  # type: ignore[arg-type]
        checked = time.perf_counter() - began
        began = time.perf_counter()
        for _ in range(GUARD_CALLS):
            await continuation(details)
        return (checked - (time.perf_counter() - began)) / GUARD_CALLS * 1_000_000

    return with_token, without, await guarded()


def outbox_cost(directory: Path) -> float:
    """What the outbox adds to a Record, in µs of this process's CPU (mean): appending it to
    the spool and noting its delivery, for a Record like a run stream's last (the run's
    usage, the slot's release, a grant of the usual length)."""
    spool = Spool(directory)
    spool.open()
    record = authorizer_pb2.RecordRequest(
        grant="g" * 160,
        runs=[
            authorizer_pb2.RunUsage(
                run_id="run_" + "r" * 24,
                thread_id="thread_" + "t" * 24,
                model="gpt-4o",
                prompt_tokens=1200,
                completion_tokens=300,
                total_tokens=1500,
            )
        ],
        finished=True,
        sequence=1,
    )
    ids = [f"req_{number:032x}.1" for number in range(OUTBOX_RECORDS)]
    began = time.process_time()
    for number, record_id in enumerate(ids):
        spool.append(Entry(record_id, "key_bench", record))
        if number >= OUTBOX_IN_FLIGHT:
            spool.delivered(ids[number - OUTBOX_IN_FLIGHT])
    spent = time.process_time() - began
    spool.close()
    return spent / OUTBOX_RECORDS * 1_000_000


def create_key(
    controlplane: str, token: str, org_id: str, policy: admin_pb2.Policy | None = None
) -> Tenant:
    """A new org and a key in it, both with the policy."""
    with grpc.insecure_channel(controlplane) as channel:
        admin = admin_pb2_grpc.AdminStub(channel)
        auth = (("authorization", f"Bearer {token}"),)
        org = admin.CreateOrg(
            admin_pb2.CreateOrgRequest(org_id=org_id, org=admin_pb2.Org(policy=policy)),
            metadata=auth,
        )
        request = admin_pb2.CreateKeyRequest(
            key=admin_pb2.Key(org_id=org.id, name="bench", policy=policy)
        )
        issued = admin.CreateKey(request, metadata=auth)
        return Tenant(org.id, issued.key.id, issued.secret)


async def measure(
    controlplane: str, direct: Target, gateway_url: str, tenants: Tenants, dataplane_pid: int
) -> None:
    print(
        f"upstream latency fixed at {UPSTREAM_LATENCY_MS} ms; {RATE} req/s for {DURATION:.0f} s "
        f"({STREAM_RATE} req/s for streamed runs); the gateway's keys, and the Check cases, "
        "take turns at that rate in all, each as many times as the direct run\n"
    )

    checks = await check_runs(
        controlplane,
        {
            "no policy, GET /v1/assistants": (tenants.plain, False),
            "no policy, run on 2 owned objects": (tenants.plain, True),
            "full policy, run on 2 owned objects": (tenants.limited, True),
        },
    )
    limited_checks = checks["full policy, run on 2 owned objects"]
    releases = [sample.release_ms for sample in limited_checks if sample.release_ms is not None]
    timings = {name: [sample.check_ms for sample in samples] for name, samples in checks.items()}
    timings["full policy, Record releasing the slot"] = releases
    print(table_header("Check RPC alone (ms)", "(samples)"))
    for name, samples in timings.items():
        values = [percentile(samples, p) for p in PERCENTILES]
        print(table_row(name, values, f"({len(samples)})"))
    # Honest only if the policy was applied in full and nothing was refused.
    for name, samples in checks.items():
        assert all(sample.allowed for sample in samples), f"{name}: a Check was refused"
    assert all(sample.limited for sample in limited_checks), "full policy: limits not counted"
    assert len(releases) == len(limited_checks), "full policy: a Check took no concurrency slot"

    # By the suffix of their rows. Every request they send must succeed (timed() raises).
    keys = {
        "": tenants.plain,
        ", full policy": tenants.limited,
        ", all but concurrency": tenants.unslotted,
    }
    gateways = {
        suffix: Target("gateway" + suffix, gateway_url, tenant.secret)
        for suffix, tenant in keys.items()
    }
    owned = {suffix: await create_objects(target) for suffix, target in gateways.items()}
    objects = await create_objects(direct)
    [direct_runs] = await latency_runs((direct, objects))
    gateway_runs = await latency_runs(*((gateways[suffix], owned[suffix]) for suffix in keys))
    for suffix in (", full policy", ", all but concurrency"):
        await assert_limits_applied(gateways[suffix], owned[suffix])
    print("\n" + table_header("added latency (ms)", "(gateway p50 / direct p50)"))
    for name, straight in direct_runs.items():
        for suffix, runs in zip(keys, gateway_runs, strict=True):
            through = runs[name]
            added = [percentile(through, p) - percentile(straight, p) for p in PERCENTILES]
            note = f"({percentile(through, 50):.1f} / {percentile(straight, 50):.1f})"
            print(table_row(name + suffix, added, note))
    print(
        "full policy: rate and concurrency limits, budgets, model globs and IP ranges on the "
        "key and its org;\nall but concurrency: the same without concurrent_requests, so no "
        "Record releases a slot"
    )

    gateway, gateway_objects = gateways[""], owned[""]
    direct_gaps = await event_arrival_gaps(direct, objects.assistant)
    gateway_gaps = await event_arrival_gaps(gateway, gateway_objects.assistant)
    per_event = statistics.mean(gateway_gaps) - statistics.mean(direct_gaps)
    print(
        f"\nstreamed events: {len(gateway_gaps)} relayed; each spends {per_event:+.3f} ms more "
        "in the gateway than the stream's first event (mean, vs direct)"
    )

    print(f"\npeak throughput, {PEAK_CONCURRENCY} clients back to back, GET:")
    print(f"  direct   {await peak_throughput(direct, objects.assistant):8.0f} req/s")
    print(f"  gateway  {await peak_throughput(gateway, gateway_objects.assistant):8.0f} req/s")

    before, growth = await upload_memory(gateway, dataplane_pid)
    print(
        f"\nupload of {UPLOAD_BYTES // 10**6} MB through the gateway: data plane RSS "
        f"{before:.0f} MiB before, peak growth {growth:.1f} MiB"
    )

    with_token, without, guard_us = await credential_cost(controlplane)
    wire = [percentile(with_token, p) - percentile(without, p) for p in PERCENTILES]
    print("\n" + table_header("the data plane's credential (µs)", "(with / without p50)"))
    print(
        table_row(
            "token on the wire (health Check with - without)",
            wire,
            f"({percentile(with_token, 50):.0f} / {percentile(without, 50):.0f})",
        )
    )
    print(f"{'token check in the control plane (mean)':{NAME_WIDTH}} {guard_us:7.2f}")
    print(f"{'per request, at the median':{NAME_WIDTH}} {wire[0] + guard_us:7.2f}")


async def engine_run_times(engine: Target) -> tuple[list[float], list[float]]:
    """Per run of the offline model, the ms from the request creating it (with its thread)
    until a poll sees it completed; and that time divided by the run's steps. Polled every
    ENGINE_POLL_SECONDS, so each time is up to that much late."""
    per_run: list[float] = []
    per_step: list[float] = []
    async with engine.client() as http:
        created = await http.post(
            "/assistants", json={"model": MODEL, "instructions": "You are a math tutor."}
        )
        created.raise_for_status()
        assistant = created.json()["id"]
        for i in range(ENGINE_WARMUP + ENGINE_RUNS):
            body = {
                "assistant_id": assistant,
                "thread": {"messages": [{"role": "user", "content": f"Solve {i}x + 11 = 14"}]},
            }
            began = time.perf_counter()
            response = await http.post("/threads/runs", json=body)
            response.raise_for_status()
            run = response.json()
            path = f"/threads/{run['thread_id']}/runs/{run['id']}"
            while run["status"] in ("queued", "in_progress"):
                await asyncio.sleep(ENGINE_POLL_SECONDS)
                response = await http.get(path)
                response.raise_for_status()
                run = response.json()
            elapsed = (time.perf_counter() - began) * 1000
            assert run["status"] == "completed", run
            steps = await http.get(path + "/steps")
            steps.raise_for_status()
            if i >= ENGINE_WARMUP:
                per_run.append(elapsed)
                per_step.append(elapsed / len(steps.json()["data"]))
    return per_run, per_step


def measure_engine(engine: Target) -> None:
    per_run, per_step = asyncio.run(engine_run_times(engine))
    print(
        f"\nengine, offline model, {ENGINE_RUNS} runs one after another, each created with its "
        f"thread and polled every {ENGINE_POLL_SECONDS * 1000:.0f} ms until completed:"
    )
    print(table_header("engine run (ms)", ""))
    print(table_row("per run", [percentile(per_run, p) for p in PERCENTILES], ""))
    print(table_row("per run step", [percentile(per_step, p) for p in PERCENTILES], ""))


def run(work: Path) -> None:
    """Starts this part's stack in `work`, measures and prints, and stops the stack."""
    logs = work / "logs"
    processes: list[stack.Process] = []
    try:
        redis_port, upstream_port = stack.free_port(), stack.free_port()
        processes.append(stack.start_redis(redis_port, work / "redis", logs))
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        engine_port = stack.free_port()
        engine_key = "sk-engine-" + secrets.token_hex(16)
        processes.append(
            stack.start_engine(
                {
                    "PRISM_ENGINE_LISTEN": f"127.0.0.1:{engine_port}",
                    "PRISM_ENGINE_API_KEY": engine_key,
                    "PRISM_ENGINE_REDIS_URL": redis_url,
                    "PRISM_ENGINE_DATA_DIR": str(work / "engine-data"),
                },
                logs,
            )
        )
        engine_url = f"http://127.0.0.1:{engine_port}"
        # The fault proxy holds every answer for the fixed latency, so the gateway's
        # share stands out against a steady upstream.
        processes.append(
            stack.start_fault_proxy(upstream_port, engine_url, logs, latency_ms=UPSTREAM_LATENCY_MS)
        )
        grpc_addr = f"127.0.0.1:{stack.free_port()}"
        http_port = stack.free_port()
        upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
        processes.append(
            setup.start_controlplane(
                grpc_addr, redis_url, upstream_url, engine_key, logs, "controlplane"
            )
        )
        dataplane = setup.start_dataplane(http_port, grpc_addr, redis_url, work, "dataplane")
        processes.append(dataplane)
        tenants = Tenants(
            create_key(grpc_addr, ADMIN_TOKEN, "bench"),
            create_key(grpc_addr, ADMIN_TOKEN, "bench-policy", full_policy()),
            create_key(grpc_addr, ADMIN_TOKEN, "bench-unslotted", full_policy(concurrency=False)),
        )
        asyncio.run(
            measure(
                grpc_addr,
                Target("direct", upstream_url, engine_key),
                f"http://127.0.0.1:{http_port}/v1",
                tenants,
                dataplane.pid,
            )
        )
        print(
            f"\nthe outbox: {outbox_cost(work / 'outbox-timed'):.1f} µs of data-plane CPU "
            f"per Record (spool append and delivery note, in-process, mean of "
            f"{OUTBOX_RECORDS})"
        )
        measure_engine(Target("engine", engine_url + "/v1", engine_key))
    finally:
        for process in reversed(processes):
            process.stop()
