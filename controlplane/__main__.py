"""`python -m controlplane`: serve until SIGINT or SIGTERM, then drain and stop."""

import asyncio
import logging
import signal
import sys

import redis

from controlplane import server
from controlplane.config import Settings
from controlplane.store import Store
from prism.settings import load_or_exit

GRACE_SECONDS = 5.0
log = logging.getLogger("prism.controlplane")


async def serve(settings: Settings) -> None:
    client = server.redis_client(settings)
    store = Store(client)
    try:
        await store.ping()
    except redis.RedisError as error:
        print(f"prism controlplane: Redis at REDIS_URL does not answer: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    grpc_server, health_servicer = await server.build(settings, store)
    await grpc_server.start()
    log.info("control plane listening on %s", settings.grpc_listen)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await health_servicer.enter_graceful_shutdown()
    await grpc_server.stop(GRACE_SECONDS)
    await client.aclose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = load_or_exit("controlplane", Settings.from_env)
    try:
        asyncio.run(serve(settings))
    except OSError as error:
        print(f"prism controlplane: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
