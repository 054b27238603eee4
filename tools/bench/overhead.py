"""The bench's second part: where each proxied request's CPU goes, next to the framework's floor.

Every run sends `GET /v1/threads/{id}` back to back over CONNECTIONS keep-alive connections
for SECONDS, then drained (load.py), and reads each process's CPU from its own counters
before and after (cpu.py), so each figure is CPU per request; the same run's requests per second are
its peak throughput. The runs, one after another on one machine:

- the minimal upstream alone (upstream.py: raw asyncio, a fixed JSON body), which every
  proxying row below stands in front of;
- the floor: a bare Quart app on Hypercorn + uvloop answering the route itself (floor.py),
  every figure's denominator;
- Prism, no policy on the key, in each LAYOUTS: 1 and 2 data-plane workers, 1 and 2
  control planes, and 1 of each with Check over a Unix socket instead of TCP;
- with `--peers litellm`, LiteLLM's proxy on the same upstream and route (peers.py).
"""

import os
import platform
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from tools import stack

from . import setup
from .cpu import cpu_seconds
from .latency import create_key
from .load import Load, LoadError, load
from .peers import PeerUnavailable, start_litellm
from .setup import ADMIN_TOKEN

CONNECTIONS = 64
WARMUP_SECONDS = 1.0  # of load before each run, not counted
SECONDS = 5.0
# After each load: what a request leaves queued (its log entry's write, its Record) runs in
# this window; counted after the measured load, not after the warm-up's.
SETTLE_SECONDS = 0.5
# The data plane's Check deadline in these runs. Saturated on purpose, it queues each
# request for longer than its default 500 ms allows, and would answer some with a cheaper
# 503 instead of measuring them.
CHECK_DEADLINE_MS = 10_000
# Below this share of the Checks' CPU, a second control plane served (next to) none of them.
IDLE_SHARE = 0.1
UPSTREAM_KEY = "sk-bench-upstream"  # the minimal upstream reads no key
PEERS = ("litellm",)
NAME_WIDTH = 56
PROCESS_WIDTH = 16


@dataclass(frozen=True)
class Layout:
    """How many of each plane a Prism run starts. One data plane dials every control
    plane through one gRPC target (`ipv4:host:port1,host:port2`); with 2 data planes, each
    dials its own control plane and the clients are split between the two."""

    workers: int  # per data plane
    controlplanes: int
    dataplanes: int = 1
    # Check over a Unix socket (`unix:/path`; a target names one control plane) instead of TCP.
    unix_socket: bool = False

    def __str__(self) -> str:
        workers = f"{self.workers} worker{'s' if self.workers > 1 else ''}"
        planes = f"{self.controlplanes} control plane{'s' if self.controlplanes > 1 else ''}"
        if self.unix_socket:
            return f"Prism, {workers}, {planes}, over a Unix socket"
        if self.dataplanes == 1:
            return f"Prism, {workers}, {planes}"
        return f"Prism, {self.dataplanes} data planes of {workers}, a control plane each"


LAYOUTS = (
    Layout(workers=1, controlplanes=1),
    Layout(workers=1, controlplanes=1, unix_socket=True),
    Layout(workers=2, controlplanes=1),
    Layout(workers=1, controlplanes=2),
    Layout(workers=2, controlplanes=2),
    Layout(workers=1, controlplanes=2, dataplanes=2),
)


@dataclass(frozen=True)
class Run:
    name: str
    load: Load
    cpu: dict[str, float]  # per process, CPU seconds spent during the load
    layout: Layout | None = None  # Prism's runs only

    def micros(self, process: str) -> float:
        """CPU per request, µs."""
        return self.cpu[process] / self.load.requests * 1_000_000


@dataclass(frozen=True)
class Shared:
    """What every run stands on: one Redis and one minimal upstream."""

    work: Path
    redis: stack.Process
    redis_url: str
    upstream: stack.Process
    upstream_url: str  # …/v1


def measured(
    name: str, urls: Sequence[str], key: str, processes: Mapping[str, Sequence[int]]
) -> Run:
    """One run: `urls` (one per data plane) under load, `processes` (name: root pids) read."""
    headers = {"authorization": f"Bearer {key}", "openai-beta": "assistants=v2"}
    load(urls, headers, CONNECTIONS, WARMUP_SECONDS)
    time.sleep(SETTLE_SECONDS)
    before = cpu_seconds(processes)
    measured_load = load(urls, headers, CONNECTIONS, SECONDS)
    time.sleep(SETTLE_SECONDS)
    after = cpu_seconds(processes)
    spent = {process: after[process] - before[process] for process in processes}
    return Run(name, measured_load, spent)


@dataclass(frozen=True)
class Planes:
    controlplanes: list[stack.Process]
    controlplane_addresses: list[str]
    dataplanes: list[stack.Process]
    urls: list[str]  # each data plane's …/v1


@contextmanager
def prism(shared: Shared, layout: Layout) -> Iterator[Planes]:
    """The layout's planes, started on the shared Redis and upstream, stopped after."""
    logs = shared.work / "logs"
    started: list[stack.Process] = []
    try:
        addresses, controlplanes = [], []
        for number in range(1, layout.controlplanes + 1):
            address = (
                f"unix:{shared.work / f'controlplane-{number}.sock'}"
                if layout.unix_socket
                else f"127.0.0.1:{stack.free_port()}"
            )
            controlplanes.append(
                setup.start_controlplane(
                    address,
                    shared.redis_url,
                    shared.upstream_url,
                    UPSTREAM_KEY,
                    logs,
                    f"controlplane-{layout.workers}w{layout.controlplanes}c{number}",
                )
            )
            started.append(controlplanes[-1])
            addresses.append(address)
        if layout.dataplanes > 1:
            targets = addresses
        else:
            targets = [addresses[0] if len(addresses) == 1 else "ipv4:" + ",".join(addresses)]
        dataplanes, urls = [], []
        for number, target in enumerate(targets, 1):
            port = stack.free_port()
            name = f"dataplane-{layout.workers}w{layout.controlplanes}c{number}"
            dataplanes.append(
                setup.start_dataplane(
                    port,
                    target,
                    shared.redis_url,
                    shared.work,
                    name,
                    {
                        "PRISM_HTTP_WORKERS": str(layout.workers),
                        "PRISM_CHECK_DEADLINE_MS": str(CHECK_DEADLINE_MS),
                    },
                )
            )
            started.append(dataplanes[-1])
            urls.append(f"http://127.0.0.1:{port}/v1")
        yield Planes(controlplanes, addresses, dataplanes, urls)
    finally:
        for process in reversed(started):
            process.stop()


def prism_run(shared: Shared, layout: Layout, key: str, thread: str) -> Run:
    with prism(shared, layout) as planes:
        processes = {"data plane": [process.pid for process in planes.dataplanes]}
        for number, process in enumerate(planes.controlplanes, 1):
            processes[f"control plane {number}"] = [process.pid]
        processes |= {"Redis": [shared.redis.pid], "upstream": [shared.upstream.pid]}
        urls = [f"{url}/threads/{thread}" for url in planes.urls]
        return replace(measured(str(layout), urls, key, processes), layout=layout)


def owned_thread(shared: Shared) -> tuple[str, str]:
    """A key with no policy and a thread its org owns, created through a gateway as a
    client would: (the key's secret, the thread's id)."""
    with prism(shared, LAYOUTS[0]) as planes:
        tenant = create_key(planes.controlplane_addresses[0], ADMIN_TOKEN, "bench-overhead")
        created = httpx.post(
            f"{planes.urls[0]}/threads",
            json={},
            headers={"authorization": f"Bearer {tenant.secret}", "openai-beta": "assistants=v2"},
            timeout=30,
        )
        created.raise_for_status()
        return tenant.secret, created.json()["id"]


def litellm_run(shared: Shared, thread: str) -> Run | str:
    """LiteLLM's run, or why there is none."""
    try:
        peer = start_litellm(shared.upstream_url, shared.work, shared.work / "logs")
    except PeerUnavailable as error:
        return f"LiteLLM: not measured, {error}"
    try:
        processes = {peer.name: [peer.process.pid], "upstream": [shared.upstream.pid]}
        url = f"{peer.base}/threads/{thread}"
        return measured(f"{peer.name}, 1 worker, no database", [url], peer.key, processes)
    except LoadError as error:
        return f"LiteLLM: not measured, {error}"
    finally:
        peer.process.stop()


def machine() -> str:
    model = next(
        (
            line.partition(":")[2].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    return f"{len(os.sched_getaffinity(0))} CPUs ({model}), Python {platform.python_version()}"


def report(runs: Sequence[Run], floor: Run, notes: Sequence[str]) -> None:
    base = floor.micros("floor")
    print(
        f"\nCPU per request and peak throughput: GET /v1/threads/{{id}}, no policy, "
        f"{CONNECTIONS} keep-alive connections back to back for {SECONDS:.0f} s per run, then "
        "drained; each process's utime+stime (its children's included) from /proc, the load "
        "generator's in none; every proxying row in front of the minimal upstream (raw "
        "asyncio, tools/bench/upstream.py)"
    )
    print(f"machine: {machine()}\n")
    print(
        f"{'run':{NAME_WIDTH}} {'req/s':>7} {'requests':>8}  {'process':{PROCESS_WIDTH}} "
        f"{'µs/request':>10} {'x floor':>8}"
    )
    for run in runs:
        rows = [(process, run.micros(process)) for process in run.cpu]
        if len(rows) > 1:
            rows.append(("all", sum(micros for _, micros in rows)))
        for number, (process, micros) in enumerate(rows):
            name, rate, count = (
                (run.name, f"{run.load.rate:.0f}", str(run.load.requests))
                if number == 0
                else ("", "", "")
            )
            print(
                f"{name:{NAME_WIDTH}} {rate:>7} {count:>8}  {process:{PROCESS_WIDTH}} "
                f"{micros:10.0f} {micros / base:8.2f}"
            )
    for note in notes:
        print(note)


def controlplane_notes(runs: Sequence[Run]) -> list[str]:
    """For each run of one data plane and 2 control planes: how much the second served."""
    notes, idle = [], False
    for run in runs:
        if run.layout is None or run.layout.controlplanes == 1 or run.layout.dataplanes > 1:
            continue
        first, second = run.cpu["control plane 1"], run.cpu["control plane 2"]
        share = second / (first + second)
        notes.append(f"{run.name}: control plane 2 spent {share:.0%} of the control planes' CPU")
        idle = idle or share < IDLE_SHARE
    if idle:
        notes.append(
            "  a second control plane in PRISM_CONTROLPLANE_ADDR took (almost) no Checks: the "
            "data plane's channel did not spread them; the run with 2 data planes shows what a "
            "second control plane adds"
        )
    return notes


def run(work: Path, peers: Sequence[str], layouts: Sequence[Layout] = LAYOUTS) -> None:
    """Starts this part's processes in `work`, measures and prints, and stops them; Prism
    in each of `layouts` (to iterate on one row: `layouts=LAYOUTS[:1]`)."""
    logs = work / "logs"
    processes: list[stack.Process] = []
    try:
        redis_port, upstream_port, floor_port = (stack.free_port() for _ in range(3))
        redis = stack.start_redis(redis_port, work / "redis", logs)
        processes.append(redis)
        upstream = setup.start_server(
            "tools.bench.upstream", upstream_port, logs, "upstream", "/v1/threads/thread_up"
        )
        processes.append(upstream)
        floor = setup.start_server(
            "tools.bench.floor", floor_port, logs, "floor", "/v1/threads/thread_up"
        )
        processes.append(floor)
        shared = Shared(
            work,
            redis,
            f"redis://127.0.0.1:{redis_port}/0",
            upstream,
            f"http://127.0.0.1:{upstream_port}/v1",
        )
        key, thread = owned_thread(shared)
        runs = [
            measured(
                "the minimal upstream alone",
                [f"{shared.upstream_url}/threads/{thread}"],
                UPSTREAM_KEY,
                {"upstream": [upstream.pid]},
            )
        ]
        floor_run = measured(
            "the floor: bare Quart on Hypercorn + uvloop",
            [f"http://127.0.0.1:{floor_port}/v1/threads/{thread}"],
            key,
            {"floor": [floor.pid]},
        )
        runs.append(floor_run)
        floor.stop()
        runs += [prism_run(shared, layout, key, thread) for layout in layouts]
        notes = controlplane_notes(runs)
        if "litellm" in peers:
            peer = litellm_run(shared, thread)
            if isinstance(peer, Run):
                runs.append(peer)
            else:
                notes.append(peer)
        report(runs, floor_run, notes)
    finally:
        for process in reversed(processes):
            process.stop()
