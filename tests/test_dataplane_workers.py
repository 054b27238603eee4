"""A data plane of several processes (PRISM_HTTP_WORKERS): they share one listening socket,
each serves requests, a second gateway cannot take their port, and stopping the data plane
stops every one of them."""

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai

from tests.conftest import (
    DATAPLANE_TOKEN,
    ControlPlane,
    DataPlane,
    IssueKey,
    Sdk,
    assert_one_clear_line,
    start_and_fail,
)
from tests.test_metrics import scrape

WORKERS = 3
# Enough connections at once that the kernel hands them to more than one worker.
CONNECTIONS = 24
# Bounds a wait for something the data plane must do; reached only when it fails to.
PATIENCE_SECONDS = 20
# Checks sent through a data plane dialing two control planes.
REQUESTS = 40


def workers(pid: int) -> list[int]:
    """The worker processes Hypercorn spawned under the data plane process."""
    children = [
        int(child)
        for task in os.listdir(f"/proc/{pid}/task")
        for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
    ]
    return [child for child in children if b"spawn_main" in _cmdline(child)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def connections_by_process(pids: list[int], port: int) -> dict[int, int]:
    """How many established connections to `port` each process holds."""
    accepted = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rpartition(":")[2], 16)
        if local_port == port and fields[3] == "01":  # established
            accepted.add(f"socket:[{fields[9]}]")
    held = {}
    for pid in pids:
        fds = os.listdir(f"/proc/{pid}/fd")
        held[pid] = sum(_link(pid, fd) in accepted for fd in fds)
    return held


def _link(pid: int, fd: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except FileNotFoundError:  # closed while listing
        return ""


def test_several_workers_serve_one_port_and_stop_together(
    start_dataplane: Callable[..., DataPlane], controlplane: ControlPlane, issue_key: IssueKey
) -> None:
    dataplane = start_dataplane(controlplane.addr, PRISM_HTTP_WORKERS=str(WORKERS))
    spawned = workers(dataplane.process.pid)
    assert len(spawned) == WORKERS
    _, issued = issue_key()
    clients = [
        openai.OpenAI(base_url=dataplane.url, api_key=issued.secret, max_retries=0)
        for _ in range(CONNECTIONS)
    ]
    try:
        # Each client keeps its connection open after its request, so every connection is
        # still held by the worker that accepted it when they are counted.
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            listed = list(pool.map(lambda client: client.beta.assistants.list(), clients))
        held = connections_by_process(spawned, int(dataplane.base.rpartition(":")[2]))
    finally:
        for client in clients:
            client.close()

    assert all(page.object == "list" for page in listed)
    assert sum(held.values()) == CONNECTIONS
    assert sum(1 for count in held.values() if count) >= 2, held

    dataplane.process.stop()

    assert dataplane.process.popen.returncode == 0
    deadline = time.monotonic() + PATIENCE_SECONDS
    while any(b"spawn_main" in _cmdline(pid) for pid in spawned):
        assert time.monotonic() < deadline, "a worker outlived the data plane"
        time.sleep(0.05)


def test_a_second_gateway_of_several_workers_cannot_take_the_port(
    start_dataplane: Callable[..., DataPlane], controlplane: ControlPlane, redis_url: str
) -> None:
    """Hypercorn alone would set SO_REUSEPORT for several workers, and this start would
    succeed, silently sharing the first gateway's port."""
    first = start_dataplane(controlplane.addr, PRISM_HTTP_WORKERS=str(WORKERS))
    taken = first.base.removeprefix("http://")

    result = start_and_fail(
        "dataplane",
        {
            "REDIS_URL": redis_url,
            "PRISM_HTTP_LISTEN": taken,
            "PRISM_CONTROLPLANE_ADDR": controlplane.addr,
            "PRISM_DATAPLANE_TOKEN": DATAPLANE_TOKEN,
            "PRISM_HTTP_WORKERS": str(WORKERS),
        },
    )

    assert_one_clear_line(result, "dataplane", 1, f"PRISM_HTTP_LISTEN={taken}")


def test_checks_are_spread_over_every_control_plane_the_address_names(
    start_controlplane: Callable[..., ControlPlane],
    start_dataplane: Callable[..., DataPlane],
    issue_key: IssueKey,
    sdk: Sdk,
) -> None:
    """PRISM_CONTROLPLANE_ADDR as a gRPC target naming two control planes: each decides a
    share of the requests (gRPC's default would send them all to the first), and with one of
    them gone the other decides them all.

    Each request is one call, a Check: gRPC spreads calls, not requests, so with a listing
    (a Check, then a FilterOwned) every Check can land on one control plane and every
    FilterOwned on the other."""
    first, second = start_controlplane(), start_controlplane()
    dataplane = start_dataplane(f"ipv4:{first.addr},{second.addr}")
    _, issued = issue_key()
    client = sdk(issued.secret, dataplane.url)
    assistant = client.beta.assistants.create(model="gpt-4o")

    before = [_checks(first), _checks(second)]
    deadline = time.monotonic() + PATIENCE_SECONDS
    # A connection still being made takes no calls meanwhile: ask until both have decided.
    while min(decided := [_checks(first) - before[0], _checks(second) - before[1]]) < 1:
        assert time.monotonic() < deadline, f"a control plane decided no request: {decided}"
        for _ in range(REQUESTS):
            client.beta.assistants.retrieve(assistant.id)

    second.process.stop()
    decided = _checks(first)
    for _ in range(REQUESTS):
        client.beta.assistants.retrieve(assistant.id)
    assert _checks(first) - decided == REQUESTS


def _checks(controlplane: ControlPlane) -> float:
    """How many Checks the control plane has decided, by its /metrics."""
    samples = scrape(controlplane.metrics_url)
    return sum(
        count for (name, _), count in samples.items() if name == "prism_check_decisions_total"
    )
