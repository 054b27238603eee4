"""Starts Prism's processes (Redis, the planes, the engine, the suite's fault proxy) and stops them.

One launcher serves `make run`, the test suite and the benchmark, so all three run the
stack the same way: real processes on loopback ports, each logging to its own file.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from prism.settings import UNIX_SOCKET_PREFIX, unix_socket_path

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0

# Variables a developer's shell may carry that must not leak into a stack we start: every
# PRISM_* setting, and these.
_OTHER_SETTINGS = ("REDIS_URL", "OPENAI_API_KEY", "PROMETHEUS_MULTIPROC_DIR")


class StartError(RuntimeError):
    """A process exited or did not become ready; the message carries its log's tail."""


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM for a graceful stop, SIGKILL if it lingers."""
        if not self.running():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PRISM_") and k not in _OTHER_SETTINGS
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def spawn(name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> Process:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group, so Ctrl-C in `make run` reaches the launcher only,
            # which then stops every process in order.
            start_new_session=True,
        )
    return Process(name, popen, log_path)


def wait_until_ready(process: Process, port: int | str, health_path: str | None = None) -> None:
    """Waits until the port (or the Unix socket at that path) accepts connections, and
    health_path answers 200 if given."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not process.running():
            raise StartError(
                f"{process.name} exited with {process.popen.returncode}:\n{process.log()[-3000:]}"
            )
        if _answers(port, health_path):
            return
        time.sleep(0.05)
    process.stop()
    raise StartError(
        f"{process.name} not ready on port {port} after {START_TIMEOUT}s:\n{process.log()[-3000:]}"
    )


def _answers(port: int | str, health_path: str | None) -> bool:
    try:
        if isinstance(port, str):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
                unix.settimeout(0.5)
                unix.connect(port)
                return True
        if health_path is None:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        return httpx.get(f"http://127.0.0.1:{port}{health_path}", timeout=0.5).status_code == 200
    except (OSError, httpx.HTTPError):
        return False


def start_redis(port: int, data_dir: Path, log_dir: Path, *, persistent: bool = False) -> Process:
    """A private redis-server on loopback; persistent means AOF on, as in production."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir)]
    argv += ["--appendonly", "yes"] if persistent else ["--save", "", "--appendonly", "no"]
    process = spawn("redis", argv, os.environ, log_dir)
    wait_until_ready(process, port)
    return process


@dataclass
class RedisCluster:
    # redis+cluster://127.0.0.1:<a node's port>: any node's address reaches all of them.
    url: str
    # Each master's redis-server by its port.
    nodes: dict[int, Process]

    def stop(self) -> None:
        for process in self.nodes.values():
            process.stop()


def start_redis_cluster(masters: int, data_dir: Path, log_dir: Path) -> RedisCluster:
    """A Redis Cluster of that many masters (no replicas) on free loopback ports, its slots
    spread by `redis-cli --cluster create`; returns once every node reports cluster_state:ok."""
    nodes: list[tuple[int, Process]] = []
    for index in range(masters):
        port = free_port()
        node_dir = data_dir / f"node-{index}"
        node_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(node_dir),
            "--save", "", "--appendonly", "no",
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(node_dir / "nodes.conf"),
            # Else port + 10000, which does not exist for ports above 55535.
            "--cluster-port", str(free_port()),
        ]  # fmt: skip
        nodes.append((port, spawn(f"redis-cluster-{index}", argv, os.environ, log_dir)))
    processes = [process for _, process in nodes]
    try:
        for port, process in nodes:
            wait_until_ready(process, port)
        addresses = [f"127.0.0.1:{port}" for port, _ in nodes]
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        for port, _ in nodes:
            while b"cluster_state:ok" not in _cluster_info(port):
                if time.monotonic() > deadline:
                    raise StartError(f"the cluster node on port {port} never reached state ok")
                time.sleep(0.1)
    except BaseException:
        for process in processes:
            process.stop()
        raise
    return RedisCluster(f"redis+cluster://127.0.0.1:{nodes[0][0]}", dict(nodes))


def _cluster_info(port: int) -> bytes:
    answer = subprocess.run(
        ["redis-cli", "-p", str(port), "cluster", "info"], capture_output=True, timeout=5
    )
    return answer.stdout


def start_controlplane(
    env: Mapping[str, str], log_dir: Path, name: str = "controlplane"
) -> Process:
    """env must carry REDIS_URL, PRISM_GRPC_LISTEN (host:port or unix:/path), PRISM_ADMIN_TOKEN
    and the upstream; a free PRISM_METRICS_LISTEN is picked unless given, so control planes
    started together never share the default."""
    env = {"PRISM_METRICS_LISTEN": f"127.0.0.1:{free_port()}"} | dict(env)
    process = spawn(name, [sys.executable, "-m", "controlplane"], clean_environment(env), log_dir)
    listen = env["PRISM_GRPC_LISTEN"]
    unix = listen.startswith(UNIX_SOCKET_PREFIX)
    wait_until_ready(process, unix_socket_path(listen) if unix else _port_of(listen))
    return process


def start_dataplane(env: Mapping[str, str], log_dir: Path, name: str = "dataplane") -> Process:
    """env must carry PRISM_HTTP_LISTEN, PRISM_CONTROLPLANE_ADDR and REDIS_URL."""
    process = spawn(name, [sys.executable, "-m", "dataplane"], clean_environment(env), log_dir)
    wait_until_ready(process, _port_of(env["PRISM_HTTP_LISTEN"]), "/healthz")
    return process


def start_engine(env: Mapping[str, str], log_dir: Path, name: str = "engine") -> Process:
    """env must carry PRISM_ENGINE_LISTEN, PRISM_ENGINE_API_KEY and PRISM_ENGINE_REDIS_URL
    (or REDIS_URL)."""
    process = spawn(name, [sys.executable, "-m", "engine"], clean_environment(env), log_dir)
    wait_until_ready(process, _port_of(env["PRISM_ENGINE_LISTEN"]))
    return process


def start_fault_proxy(port: int, upstream: str, log_dir: Path, *, latency_ms: int = 0) -> Process:
    """The suite's fault proxy (tests/fault_proxy) on `port`, forwarding to `upstream`."""
    argv = [
        sys.executable,
        "-m",
        "tests.fault_proxy",
        "--listen",
        f"127.0.0.1:{port}",
        "--upstream",
        upstream,
        "--latency-ms",
        str(latency_ms),
    ]
    process = spawn("fault-proxy", argv, clean_environment({}), log_dir)
    wait_until_ready(process, port, "/_proxy/healthz")
    return process


def _port_of(listen: str) -> int:
    return int(listen.rpartition(":")[2])
