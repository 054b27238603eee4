"""`python -m tests.fault_proxy --listen HOST:PORT --upstream URL [--latency-ms N]`: serves
the fault proxy until SIGTERM or SIGINT."""

import argparse
import asyncio
import signal

import uvloop
from hypercorn.asyncio import serve
from hypercorn.config import Config

from .proxy import FaultProxy


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fault_proxy", description=__doc__)
    parser.add_argument("--listen", required=True, help="HOST:PORT to bind")
    parser.add_argument("--upstream", required=True, help="the origin requests go to")
    parser.add_argument(
        "--latency-ms", type=_non_negative, default=0, help="delay before every response"
    )
    return parser.parse_args()


async def _serve(config: Config, args: argparse.Namespace) -> None:
    app = FaultProxy(args.upstream, args.latency_ms)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


def main() -> None:
    args = parse_args()
    config = Config()
    config.bind = [args.listen]
    config.accesslog = None
    config.errorlog = "-"
    # Idle keep-alive connections stay open long enough that a client's pool never
    # reuses one at the instant the server closes it (a spurious connection error).
    config.keep_alive_timeout = 300
    uvloop.run(_serve(config, args))


if __name__ == "__main__":
    main()
