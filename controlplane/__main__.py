"""`python -m controlplane`: serve until SIGINT or SIGTERM, then drain and stop."""

import asyncio
import logging
import signal
import sys

import uvloop

from controlplane import server
from controlplane.config import Settings
from controlplane.errors import Unavailable
from controlplane.metrics_server import MetricsServer
from controlplane.redis_access import ping
from prism.settings import load_or_exit

GRACE_SECONDS = 5.0
log = logging.getLogger("prism.controlplane")


async def serve(settings: Settings) -> None:
    client = server.redis_client(settings)
    try:
        await ping(client)
    except Unavailable as error:
        _exit(f"{str(error).rstrip('.')}; start Redis or fix REDIS_URL")
    # Handlers go in before the port opens: whoever sees it open may signal at once.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    grpc_server, health_servicer, sweeper = await server.build(settings, client)
    # Before the gRPC port opens: whoever finds it open finds /metrics served too.
    metrics = MetricsServer.start(settings.metrics_host, settings.metrics_port)
    await grpc_server.start()
    sweeper.start()
    log.info("control plane listening on %s", settings.grpc_listen)
    log.info("metrics on http://%s:%s/metrics", settings.metrics_host, settings.metrics_port)
    await stopping.wait()
    log.info("stopping: draining calls for up to %ss", GRACE_SECONDS)
    await health_servicer.enter_graceful_shutdown()
    await grpc_server.stop(GRACE_SECONDS)
    await sweeper.stop()
    await metrics.stop()
    await client.aclose()


def _exit(message: str) -> None:
    print(f"prism controlplane: {message}", file=sys.stderr)
    raise SystemExit(1)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = load_or_exit("controlplane", Settings.from_env)
    try:
        uvloop.run(serve(settings))
    except OSError as error:
        _exit(str(error))


if __name__ == "__main__":
    main()
