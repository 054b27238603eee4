"""`make bench`: what the gateway adds, measured on this machine.

Starts a private stack whose fake upstream answers after a fixed latency, then sends the
same requests at a fixed rate twice, straight to the upstream and through the gateway; the
added latency is the difference of the two distributions' percentiles. Also measured: the
time each streamed event spends in the gateway, the peak throughput with many clients in
flight, and the data plane's memory while a 512 MiB file is uploaded through it.
"""

import asyncio
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx

from prism.v1 import admin_pb2, admin_pb2_grpc
from tools import stack

UPSTREAM_LATENCY_MS = 20
RATE = 100  # requests per second for the latency runs
DURATION = 10.0  # seconds per latency run
STREAM_RATE = 20
PEAK_CONCURRENCY = 64
PEAK_DURATION = 5.0
UPLOAD_BYTES = 512_000_000  # "512 MB", the upload limit OpenAI documents
CHUNK = 1_000_000


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
            limits=httpx.Limits(max_connections=limits.get("connections", 200)),
        )


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def at_fixed_rate(
    rate: float, duration: float, request: Callable[[], Awaitable[float]]
) -> list[float]:
    """Open loop: request i starts at i/rate whatever the others do, as real traffic would."""
    start = time.perf_counter()
    tasks = []
    for i in range(int(rate * duration)):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(request()))
    return list(await asyncio.gather(*tasks))


async def timed(send: Awaitable[httpx.Response]) -> float:
    began = time.perf_counter()
    response = await send
    response.raise_for_status()
    return (time.perf_counter() - began) * 1000


async def latency_runs(target: Target, assistant: str, thread: str) -> dict[str, list[float]]:
    async with target.client() as http:
        get = await at_fixed_rate(
            RATE, DURATION, lambda: timed(http.get(f"/assistants/{assistant}"))
        )
        post = await at_fixed_rate(
            RATE,
            DURATION,
            lambda: timed(
                http.post(f"/threads/{thread}/messages", json={"role": "user", "content": "hi"})
            ),
        )
        streamed = await at_fixed_rate(STREAM_RATE, DURATION, lambda: streamed_run(http, assistant))
    return {
        "GET /assistants/{id}": get,
        "POST /threads/{id}/messages": post,
        "POST /threads/runs (stream)": streamed,
    }


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


def create_key(controlplane: str, token: str) -> str:
    with grpc.insecure_channel(controlplane) as channel:
        admin = admin_pb2_grpc.AdminStub(channel)
        auth = (("authorization", f"Bearer {token}"),)
        org = admin.CreateOrg(admin_pb2.CreateOrgRequest(org_id="bench"), metadata=auth)
        request = admin_pb2.CreateKeyRequest(key=admin_pb2.Key(org_id=org.id, name="bench"))
        return admin.CreateKey(request, metadata=auth).secret


async def measure(direct: Target, gateway: Target, dataplane_pid: int) -> None:
    async with direct.client() as http:
        assistant = (await http.post("/assistants", json={"model": "gpt-4o"})).json()["id"]
        thread = (await http.post("/threads", json={})).json()["id"]

    print(
        f"upstream latency fixed at {UPSTREAM_LATENCY_MS} ms; {RATE} req/s for {DURATION:.0f} s "
        f"({STREAM_RATE} req/s for streamed runs)\n"
    )
    direct_runs = await latency_runs(direct, assistant, thread)
    gateway_runs = await latency_runs(gateway, assistant, thread)
    print(
        f"{'added latency (ms)':34} {'p50':>7} {'p95':>7} {'p99':>7}   (gateway p50 / direct p50)"
    )
    for name, through in gateway_runs.items():
        straight = direct_runs[name]
        added = [percentile(through, p) - percentile(straight, p) for p in (50, 95, 99)]
        print(
            f"{name:34} {added[0]:7.2f} {added[1]:7.2f} {added[2]:7.2f}   "
            f"({percentile(through, 50):.1f} / {percentile(straight, 50):.1f})"
        )

    direct_gaps = await event_arrival_gaps(direct, assistant)
    gateway_gaps = await event_arrival_gaps(gateway, assistant)
    per_event = statistics.mean(gateway_gaps) - statistics.mean(direct_gaps)
    print(
        f"\nstreamed events: {len(gateway_gaps)} relayed; each spends {per_event:+.3f} ms more "
        "in the gateway than the stream's first event (mean, vs direct)"
    )

    print(f"\npeak throughput, {PEAK_CONCURRENCY} clients back to back, GET:")
    print(f"  direct   {await peak_throughput(direct, assistant):8.0f} req/s")
    print(f"  gateway  {await peak_throughput(gateway, assistant):8.0f} req/s")

    before, growth = await upload_memory(gateway, dataplane_pid)
    print(
        f"\nupload of {UPLOAD_BYTES // 10**6} MB through the gateway: data plane RSS "
        f"{before:.0f} MiB before, peak growth {growth:.1f} MiB"
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="prism-bench-") as tmp:
        work = Path(tmp)
        logs = work / "logs"
        processes: list[stack.Process] = []
        try:
            redis_port, upstream_port = stack.free_port(), stack.free_port()
            processes.append(stack.start_redis(redis_port, work / "redis", logs))
            upstream_key = "sk-upstream-" + secrets.token_hex(16)
            processes.append(
                stack.start_fake_upstream(
                    upstream_port,
                    upstream_key,
                    work / "files",
                    logs,
                    latency_ms=UPSTREAM_LATENCY_MS,
                )
            )
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
            grpc_addr = f"127.0.0.1:{stack.free_port()}"
            http_port = stack.free_port()
            token = secrets.token_hex(16)
            upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
            processes.append(
                stack.start_controlplane(
                    {
                        "REDIS_URL": redis_url,
                        "PRISM_GRPC_LISTEN": grpc_addr,
                        "PRISM_ADMIN_TOKEN": token,
                        "PRISM_UPSTREAM_URL": upstream_url,
                        "PRISM_UPSTREAM_API_KEY": upstream_key,
                    },
                    logs,
                )
            )
            dataplane = stack.start_dataplane(
                {
                    "REDIS_URL": redis_url,
                    "PRISM_HTTP_LISTEN": f"127.0.0.1:{http_port}",
                    "PRISM_CONTROLPLANE_ADDR": grpc_addr,
                },
                logs,
            )
            processes.append(dataplane)
            direct = Target("direct", upstream_url, upstream_key)
            gateway = Target(
                "gateway", f"http://127.0.0.1:{http_port}/v1", create_key(grpc_addr, token)
            )
            asyncio.run(measure(direct, gateway, dataplane.pid))
        finally:
            for process in reversed(processes):
                process.stop()


if __name__ == "__main__":
    main()
