"""`python -m dataplane`: serves the gateway on PRISM_HTTP_LISTEN until SIGINT or SIGTERM.

The listening socket is bound here, once, and handed to Hypercorn by file descriptor. With
PRISM_HTTP_WORKERS=1 the app is served in this process; with more, Hypercorn spawns that many
worker processes which all accept on that one socket (each loads `dataplane.app:worker_app()`),
and stops them all on SIGINT or SIGTERM (prism/serving.py; why here: prism/listen.py).

Metrics (metrics.py) are kept in prometheus_client's multiprocess mode, in a private directory
made here for each run and removed at exit: set in the environment before the app is loaded,
so the process serving in place and every spawned worker (which inherit the environment)
write their samples there, and any of them can answer /metrics for all.
"""

import os
import shutil
import sys
import tempfile

from prism.serving import listen_or_exit, serve
from prism.settings import load_or_exit

from .config import load_settings


def main() -> None:
    settings = load_or_exit("dataplane", load_settings)
    listener = listen_or_exit(
        "dataplane", "PRISM_HTTP_LISTEN", settings.http_host, settings.http_port
    )
    # A fresh directory: files a previous run left would be counted in this run's totals.
    metrics_dir = tempfile.mkdtemp(prefix="prism-dataplane-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        status = serve(listener, "dataplane.app:worker_app()", settings.http_workers)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
