"""The bench's third part: the control plane's CPU per Check, next to gRPC's own floor.

The overhead bench (overhead.py) sees each Check through a data plane, whose own cost caps
how many arrive. Here the Checks come straight from the bench's process: CONCURRENCY
callers on one grpc.aio channel, as the data plane sends them (its channel options and
credential, a fresh request id each), ask the Check of `GET /v1/threads/{id}` (a key with
no policy, a thread its org owns) back to back for SECONDS after a warm-up, then drain.
Each server's utime+stime is read from /proc before and after (cpu.py), so each figure is
CPU per Check. The runs, on one machine, in one session:

- the floor: a bare grpc.aio servicer (grpc_floor.py) answering the same request with the
  control plane's answer to it, every figure's denominator;
- the control plane, with Redis's CPU beside it.
"""

import asyncio
import itertools
import secrets
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import redis.asyncio as redis
import uvloop

from dataplane.authorizer import CHANNEL_OPTIONS
from prism.settings import UNIX_SOCKET_PREFIX, unix_socket_path
from prism.v1 import authorizer_pb2, authorizer_pb2_grpc
from tools import stack

from . import setup
from .cpu import cpu_seconds
from .latency import create_key
from .setup import ADMIN_TOKEN, DATAPLANE_TOKEN

CONCURRENCY = 64
WARMUP_SECONDS = 1.0
SECONDS = 5.0
METADATA = (("authorization", f"Bearer {DATAPLANE_TOKEN}"),)
# The control plane never forwards anything here: Check only names the upstream.
UPSTREAM_URL = "http://127.0.0.1:9/v1"
# A Check's script call, as decisions.py makes it for this request: 8 keys (the key's and
# org's records, its objects and object models, 3 of reservations, the usage hash) and its
# JSON argument; the script's answer when it allows.
SCRIPT_KEYS = 8
SCRIPT_ARGUMENT_BYTES = 410
_SCRIPT_ANSWER = '{"outcome":"ok","counters":{}}'
NAME_WIDTH = 56
PROCESS_WIDTH = 14


@dataclass(frozen=True)
class Run:
    name: str
    checks: int
    seconds: float
    cpu: dict[str, float]  # per process, CPU seconds spent during the load

    def micros(self, process: str) -> float:
        """CPU per Check, µs."""
        return self.cpu[process] / self.checks * 1_000_000


def thread_check(secret: str, thread: str) -> authorizer_pb2.CheckRequest:
    """What the data plane asks for `GET /v1/threads/{thread}` (no request id yet)."""
    return authorizer_pb2.CheckRequest(
        api_key=secret,
        client_ip="127.0.0.1",
        method="GET",
        route="GET /v1/threads/{thread_id}",
        objects=[authorizer_pb2.ObjectRef(id=thread, kind=authorizer_pb2.OBJECT_KIND_THREAD)],
    )


async def _checks(
    target: str, request: authorizer_pb2.CheckRequest, seconds: float
) -> tuple[int, float]:
    """Checks answered (every one allowed, else AssertionError) and the seconds taken."""
    ids = itertools.count()
    answered = 0
    began = time.perf_counter()
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        check = authorizer_pb2_grpc.AuthorizerStub(channel).Check

        async def caller() -> None:
            nonlocal answered
            while time.perf_counter() - began < seconds:
                asked = authorizer_pb2.CheckRequest()
                asked.CopyFrom(request)
                asked.request_id = f"req_bench_{next(ids)}"
                answer = await check(asked, timeout=10, metadata=METADATA)
                assert answer.allowed, answer.denial
                answered += 1

        await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
    return answered, time.perf_counter() - began


def measured(
    name: str, target: str, request: authorizer_pb2.CheckRequest, processes: Mapping[str, int]
) -> Run:
    uvloop.run(_checks(target, request, WARMUP_SECONDS))
    before = cpu_seconds({process: [pid] for process, pid in processes.items()})
    checks, seconds = uvloop.run(_checks(target, request, SECONDS))
    after = cpu_seconds({process: [pid] for process, pid in processes.items()})
    return Run(name, checks, seconds, {p: after[p] - before[p] for p in processes})


@dataclass(frozen=True)
class Tenant:
    secret: str
    thread: str


def owned_thread(target: str) -> Tenant:
    """A key with no policy and a thread recorded as its org's, as the data plane records
    the thread a response created."""
    key = create_key(target, ADMIN_TOKEN, "bench-checks")
    thread = "thread_bench" + secrets.token_hex(8)

    async def record() -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = authorizer_pb2_grpc.AuthorizerStub(channel)
            asked = authorizer_pb2.CheckRequest(
                api_key=key.secret,
                client_ip="127.0.0.1",
                method="POST",
                route="POST /v1/threads",
                request_id="req_bench_setup",
            )
            allowed = await stub.Check(asked, timeout=10, metadata=METADATA)
            owned = authorizer_pb2.OwnedObject(id=thread, kind=authorizer_pb2.OBJECT_KIND_THREAD)
            await stub.Record(
                authorizer_pb2.RecordRequest(grant=allowed.grant, finished=True, objects=[owned]),
                timeout=10,
                metadata=METADATA,
            )

    uvloop.run(record())
    return Tenant(key.secret, thread)


def answer_of(target: str, request: authorizer_pb2.CheckRequest) -> authorizer_pb2.CheckResponse:
    async def ask() -> authorizer_pb2.CheckResponse:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = authorizer_pb2_grpc.AuthorizerStub(channel)
            asked = authorizer_pb2.CheckRequest()
            asked.CopyFrom(request)
            asked.request_id = "req_bench_answer"
            return await stub.Check(asked, timeout=10, metadata=METADATA)

    return uvloop.run(ask())


@contextmanager
def grpc_floor(listen: str, answer: authorizer_pb2.CheckResponse, work: Path) -> Iterator[int]:
    """The floor server on `listen` (host:port or unix:/path), answering `answer`: its pid."""
    answer_file = work / "check-answer.bin"
    answer_file.write_bytes(answer.SerializeToString())
    argv = [sys.executable, "-m", "tools.bench.grpc_floor", "--listen", listen]
    argv += ["--answer", str(answer_file)]
    process = stack.spawn("grpc-floor", argv, stack.clean_environment({}), work / "logs")
    try:
        unix = listen.startswith(UNIX_SOCKET_PREFIX)
        stack.wait_until_ready(
            process, unix_socket_path(listen) if unix else int(listen.rpartition(":")[2])
        )
        yield process.pid
    finally:
        process.stop()


def report(runs: Sequence[Run], floor: Run) -> None:
    base = floor.micros("floor")
    print(
        f"\nCPU per Check: the Check of GET /v1/threads/{{id}} (no policy, an owned thread), "
        f"{CONCURRENCY} callers on one grpc.aio channel back to back for {SECONDS:.0f} s per "
        "run, from the bench's process; each server's utime+stime from /proc"
    )
    print(
        f"{'run':{NAME_WIDTH}} {'Checks/s':>8} {'Checks':>7}  {'process':{PROCESS_WIDTH}} "
        f"{'µs/Check':>8} {'x floor':>8}"
    )
    for run in runs:
        for number, process in enumerate(run.cpu):
            name, rate, count = (
                (run.name, f"{run.checks / run.seconds:.0f}", str(run.checks))
                if number == 0
                else ("", "", "")
            )
            micros = run.micros(process)
            print(
                f"{name:{NAME_WIDTH}} {rate:>8} {count:>7}  {process:{PROCESS_WIDTH}} "
                f"{micros:8.0f} {micros / base:8.2f}"
            )


async def _scripts(url: str, keys: int, argument_bytes: int, seconds: float) -> int:
    """EVALSHAs answered: CONCURRENCY callers, each running a script that only answers."""
    # As server.redis_client makes the control plane's client.
    client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5.0)
    script = client.register_script("return '" + _SCRIPT_ANSWER + "'")
    names = [f"bench:script:{number}" for number in range(keys)]
    argument = "x" * argument_bytes
    answered = 0
    began = time.perf_counter()

    async def caller() -> None:
        nonlocal answered
        while time.perf_counter() - began < seconds:
            assert await script(keys=names, args=[argument]) == _SCRIPT_ANSWER
            answered += 1

    try:
        await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
    finally:
        await client.aclose()
    return answered


def redis_client_floor(url: str, redis_pid: int) -> Run:
    """The Redis client's own cost of a Check's one script call, in this process: redis-py
    as the control plane uses it, the same number of keys and bytes of argument, a script
    that only answers."""
    uvloop.run(_scripts(url, SCRIPT_KEYS, SCRIPT_ARGUMENT_BYTES, WARMUP_SECONDS))
    before = cpu_seconds({"Redis": [redis_pid]})["Redis"], time.process_time()
    began = time.perf_counter()
    calls = uvloop.run(_scripts(url, SCRIPT_KEYS, SCRIPT_ARGUMENT_BYTES, SECONDS))
    seconds = time.perf_counter() - began
    spent = {
        "redis-py": time.process_time() - before[1],
        "Redis": cpu_seconds({"Redis": [redis_pid]})["Redis"] - before[0],
    }
    return Run("the Redis client's floor: redis-py EVALSHA", calls, seconds, spent)


def run(work: Path) -> None:
    """Starts this part's processes in `work`, measures and prints, and stops them."""
    logs = work / "logs"
    processes: list[stack.Process] = []
    try:
        redis_port = stack.free_port()
        redis_process = stack.start_redis(redis_port, work / "redis", logs)
        processes.append(redis_process)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        addresses = {
            "TCP": f"127.0.0.1:{stack.free_port()}",
            "a Unix socket": f"unix:{work / 'controlplane.sock'}",
        }
        controlplanes = {}
        for transport, address in addresses.items():
            controlplanes[transport] = setup.start_controlplane(
                address,
                redis_url,
                UPSTREAM_URL,
                "sk-bench-upstream",
                logs,
                f"checks-{len(controlplanes)}",
            )
            processes.append(controlplanes[transport])
        tenant = owned_thread(addresses["TCP"])
        request = thread_check(tenant.secret, tenant.thread)
        answer = answer_of(addresses["TCP"], request)
        runs = []
        floor_addresses = {
            "TCP": f"127.0.0.1:{stack.free_port()}",
            "a Unix socket": f"unix:{work / 'floor.sock'}",
        }
        for transport, address in floor_addresses.items():
            with grpc_floor(address, answer, work) as floor_pid:
                runs.append(
                    measured(
                        f"gRPC's floor: a bare grpc.aio servicer, {transport}",
                        address,
                        request,
                        {"floor": floor_pid},
                    )
                )
        runs.append(redis_client_floor(redis_url, redis_process.pid))
        for transport, address in addresses.items():
            processes_read = {
                "control plane": controlplanes[transport].pid,
                "Redis": redis_process.pid,
            }
            runs.append(
                measured(f"the control plane, {transport}", address, request, processes_read)
            )
        report(runs, runs[0])
    finally:
        for process in reversed(processes):
            process.stop()
