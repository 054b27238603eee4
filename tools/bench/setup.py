"""The bench's planes, started the same way by each part: a control plane that serves the
bench's admin token and data-plane credential, and a data plane that presents it."""

import secrets
import sys
from collections.abc import Mapping
from pathlib import Path

from tools import stack

# The bench stacks' data planes' credential, which the bench's own Checks present too.
DATAPLANE_TOKEN = secrets.token_urlsafe(32)
# The admin token of every control plane the bench starts.
ADMIN_TOKEN = secrets.token_hex(16)


def start_controlplane(
    listen: str, redis_url: str, upstream_url: str, upstream_key: str, logs: Path, name: str
) -> stack.Process:
    """A control plane on `listen` (host:port) whose upstream is `upstream_url` (…/v1)."""
    env = {
        "REDIS_URL": redis_url,
        "PRISM_GRPC_LISTEN": listen,
        "PRISM_ADMIN_TOKEN": ADMIN_TOKEN,
        "PRISM_DATAPLANE_TOKEN": DATAPLANE_TOKEN,
        "PRISM_UPSTREAM_URL": upstream_url,
        "PRISM_UPSTREAM_API_KEY": upstream_key,
    }
    return stack.start_controlplane(env, logs, name)


def start_dataplane(
    port: int,
    controlplane: str,
    redis_url: str,
    work: Path,
    name: str,
    settings: Mapping[str, str] | None = None,
) -> stack.Process:
    """A data plane on loopback `port` dialing `controlplane` (the gRPC target that
    PRISM_CONTROLPLANE_ADDR names), its outbox's spools in `work`, with other `settings`."""
    env = {
        "REDIS_URL": redis_url,
        "PRISM_HTTP_LISTEN": f"127.0.0.1:{port}",
        "PRISM_CONTROLPLANE_ADDR": controlplane,
        "PRISM_DATAPLANE_TOKEN": DATAPLANE_TOKEN,
        "PRISM_OUTBOX_DIR": str(work / f"outbox-{name}"),
    } | dict(settings or {})
    return stack.start_dataplane(env, work / "logs", name)


def start_server(module: str, port: int, logs: Path, name: str, health_path: str) -> stack.Process:
    """One of the bench's own servers (`python -m module --listen 127.0.0.1:port`)."""
    argv = [sys.executable, "-m", module, "--listen", f"127.0.0.1:{port}"]
    process = stack.spawn(name, argv, stack.clean_environment({}), logs)
    stack.wait_until_ready(process, port, health_path)
    return process
