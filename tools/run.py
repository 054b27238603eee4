"""`make run`: the whole stack on this machine, until Ctrl-C.

Uses the Redis REDIS_URL names, starting one (with AOF, data in .prism/redis) when none
answers there. PRISM_MASTER_KEY, which seals orgs' upstream credentials, is made once and
kept in .prism/master-key unless given, so sealed credentials outlive a restart.
Forwards to PRISM_UPSTREAM_URL with PRISM_UPSTREAM_API_KEY or OPENAI_API_KEY. With none of
the three it starts the Assistants engine (`python -m engine`, the built-in offline model
unless PRISM_ENGINE_MODELS says otherwise, file bytes in .prism/engine-data) on the same
Redis and forwards there, so the README's examples work offline; the engine's key is made
anew each run, since only this launcher hands it out. PRISM_UPSTREAM_URL without a key is an
error.
"""

import base64
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from prism import redis_client
from prism.settings import ConfigError, env, redis_url
from tools import stack

STATE_DIR = stack.ROOT / ".prism"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def main() -> None:
    logs = STATE_DIR / "logs"
    processes: list[stack.Process] = []
    # Explicitly, because a launcher started in the background inherits SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        redis_address = _ensure_redis(logs, processes)
        # The developer's other PRISM_* settings (workers, limits, logs, the engine's
        # models...) reach every process; the ones decided here take precedence.
        shared = {
            name: value for name, value in os.environ.items() if name.startswith("PRISM_")
        } | {"REDIS_URL": redis_address}
        upstream_url, upstream_key, upstream_name = _upstream(shared, logs, processes)
        admin_token = os.environ.get("PRISM_ADMIN_TOKEN") or secrets.token_urlsafe(24)
        # Only the two planes started here need it, so a new one each run unless given.
        dataplane_token = os.environ.get("PRISM_DATAPLANE_TOKEN") or secrets.token_urlsafe(32)
        grpc_listen = env("PRISM_GRPC_LISTEN", "127.0.0.1:50051")
        controlplane_addr = env("PRISM_CONTROLPLANE_ADDR", grpc_listen)
        http_listen = env("PRISM_HTTP_LISTEN", "127.0.0.1:8080")
        metrics_listen = env("PRISM_METRICS_LISTEN", "127.0.0.1:9464")
        processes.append(
            stack.start_controlplane(
                shared
                | {
                    "PRISM_GRPC_LISTEN": grpc_listen,
                    "PRISM_METRICS_LISTEN": metrics_listen,
                    "PRISM_ADMIN_TOKEN": admin_token,
                    "PRISM_DATAPLANE_TOKEN": dataplane_token,
                    "PRISM_UPSTREAM_URL": upstream_url,
                    "PRISM_UPSTREAM_API_KEY": upstream_key,
                    "PRISM_MASTER_KEY": _master_key(),
                },
                logs,
            )
        )
        processes.append(
            stack.start_dataplane(
                shared
                | {
                    "PRISM_HTTP_LISTEN": http_listen,
                    "PRISM_CONTROLPLANE_ADDR": controlplane_addr,
                    "PRISM_DATAPLANE_TOKEN": dataplane_token,
                },
                logs,
            )
        )
        _print_banner(
            http_listen,
            grpc_listen,
            metrics_listen,
            admin_token,
            f"{upstream_url}   ({upstream_name})",
            logs,
        )
        _wait_while_running(processes)
    except (ConfigError, stack.StartError) as error:
        print(f"prism run: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        for process in reversed(processes):
            process.stop()


def _ensure_redis(logs: Path, processes: list[stack.Process]) -> str:
    address = redis_url("REDIS_URL", env("REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        redis_client.sync_client(address, socket_timeout=1).ping()
        print(f"using the Redis at {address}")
        return address
    except redis_client.ERRORS:
        pass
    parts = urlsplit(address)
    # A cluster is not something one redis-server here can stand in for.
    if parts.hostname not in LOOPBACK or redis_client.is_cluster(address):
        raise ConfigError(f"REDIS_URL={address!r} does not answer")
    port = parts.port or 6379
    processes.append(stack.start_redis(port, STATE_DIR / "redis", logs, persistent=True))
    print(f"started redis-server on 127.0.0.1:{port} (AOF in {STATE_DIR / 'redis'})")
    return address


def _master_key() -> str:
    if given := os.environ.get("PRISM_MASTER_KEY"):
        return given
    path = STATE_DIR / "master-key"
    if not path.exists():
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    return path.read_text().strip()


def _upstream(
    shared: dict[str, str], logs: Path, processes: list[stack.Process]
) -> tuple[str, str, str]:
    """The upstream's URL, its key, and what it is, in words."""
    key = os.environ.get("PRISM_UPSTREAM_API_KEY") or os.environ.get("OPENAI_API_KEY")
    if key:
        url = env("PRISM_UPSTREAM_URL", "https://api.openai.com/v1")
        print(f"forwarding to {url}")
        named = "PRISM_UPSTREAM_URL" in os.environ
        return url, key, "PRISM_UPSTREAM_URL" if named else "OpenAI"
    if os.environ.get("PRISM_UPSTREAM_URL"):
        sys.exit("prism run: PRISM_UPSTREAM_URL needs PRISM_UPSTREAM_API_KEY or OPENAI_API_KEY")
    return _engine(shared, logs, processes)


def _engine(
    shared: dict[str, str], logs: Path, processes: list[stack.Process]
) -> tuple[str, str, str]:
    """The Assistants engine on the stack's Redis: its URL, the key it requires, what it is."""
    listen = env("PRISM_ENGINE_LISTEN", "127.0.0.1:8090")
    key = "sk-engine-" + secrets.token_urlsafe(24)
    settings = {
        "PRISM_ENGINE_LISTEN": listen,
        "PRISM_ENGINE_API_KEY": key,
        "PRISM_ENGINE_DATA_DIR": env("PRISM_ENGINE_DATA_DIR", str(STATE_DIR / "engine-data")),
    }
    processes.append(stack.start_engine(shared | settings, logs))
    models = os.environ.get("PRISM_ENGINE_MODELS")
    serving = f"the models in {models}" if models else "its built-in offline model"
    print(
        "no PRISM_UPSTREAM_URL, PRISM_UPSTREAM_API_KEY or OPENAI_API_KEY: forwarding to the "
        f"Assistants engine on {listen} ({serving})"
    )
    return f"http://{listen}/v1", key, f"the Assistants engine, {serving}"


def _print_banner(
    http: str, grpc_addr: str, metrics: str, token: str, upstream: str, logs: Path
) -> None:
    auth = f"-rpc-header 'authorization: Bearer {token}'"
    grpcurl = ".venv/bin/grpcurl -plaintext"
    print(
        f"""
Prism is running.
  data plane     http://{http}/v1   (OpenAI(base_url=..., api_key="sk-prism-..."))
  control plane  {grpc_addr}   (gRPC; reflection on)
  metrics        http://{http}/metrics   (data plane)
                 http://{metrics}/metrics   (control plane)
  upstream       {upstream}
  admin token    {token}
  logs           {logs}

Create an org and a key:
  {grpcurl} {auth} -d '{{"org_id": "acme", "org": {{"display_name": "Acme"}}}}' \\
      {grpc_addr} prism.v1.Admin/CreateOrg
  {grpcurl} {auth} -d '{{"key": {{"org_id": "acme", "name": "first key"}}}}' \\
      {grpc_addr} prism.v1.Admin/CreateKey

Ctrl-C stops everything.""",
        flush=True,
    )


def _wait_while_running(processes: list[stack.Process]) -> None:
    while True:
        for process in processes:
            if not process.running():
                raise stack.StartError(
                    f"{process.name} exited with {process.popen.returncode}; see {process.log_path}"
                )
        time.sleep(0.5)


if __name__ == "__main__":
    main()
