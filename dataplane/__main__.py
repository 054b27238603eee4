"""`python -m dataplane`: serves the gateway on PRISM_HTTP_LISTEN until SIGINT or SIGTERM.

The listening socket is bound here, once, and handed to Hypercorn by file descriptor. With
PRISM_HTTP_WORKERS=1 the app is served in this process; with more, Hypercorn spawns that many
worker processes which all accept on that one socket (each loads `dataplane.app:worker_app()`),
and stops them all on SIGINT or SIGTERM. (Why here: prism/listen.py.)

Metrics (metrics.py) are kept in prometheus_client's multiprocess mode, in a private directory
made here for each run and removed at exit: set in the environment before the app is loaded,
so the process serving in place and every spawned worker (which inherit the environment)
write their samples there, and any of them can answer /metrics for all.
"""

import logging
import os
import shutil
import socket
import sys
import tempfile

from hypercorn.config import Config
from hypercorn.run import run

from prism.listen import listening_socket
from prism.settings import load_or_exit

from .config import Settings, load_settings


def _hypercorn_config(settings: Settings, listener: socket.socket) -> Config:
    config = Config()
    # Hypercorn owns the socket from here on.
    config.bind = [f"fd://{listener.detach()}"]
    config.application_path = "dataplane.app:worker_app()"
    config.worker_class = "uvloop"
    # 0 serves in this process; Hypercorn spawns processes only for more than one.
    config.workers = settings.http_workers if settings.http_workers > 1 else 0
    # The upstream's `server` header is relayed; the gateway does not add its own.
    config.include_server_header = False
    # Through the root logger each worker configures (worker_app), not a handler of its own.
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def main() -> None:
    settings = load_or_exit("dataplane", load_settings)
    try:
        listener = listening_socket(settings.http_host, settings.http_port)
    except OSError as error:  # the port is taken or the address is not ours
        print(
            f"prism dataplane: cannot listen on PRISM_HTTP_LISTEN={settings.http_host}:"
            f"{settings.http_port}: {error.strerror or error}",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    # A fresh directory: files a previous run left would be counted in this run's totals.
    metrics_dir = tempfile.mkdtemp(prefix="prism-dataplane-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        status = run(_hypercorn_config(settings, listener))
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
