"""`python -m dataplane`: serves the gateway on PRISM_HTTP_LISTEN until SIGINT or SIGTERM."""

import logging
import sys

import uvloop
from hypercorn.asyncio import serve
from hypercorn.config import Config

from prism.settings import load_or_exit

from .app import create_app
from .config import Settings, load_settings


def _hypercorn_config(settings: Settings) -> Config:
    config = Config()
    host = f"[{settings.http_host}]" if ":" in settings.http_host else settings.http_host
    config.bind = [f"{host}:{settings.http_port}"]
    # The upstream's `server` header is relayed; the gateway does not add its own.
    config.include_server_header = False
    # Through the root logger configured in main(), not a second handler of Hypercorn's own.
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def main() -> None:
    settings = load_or_exit("dataplane", load_settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app(settings)
    # With no shutdown trigger, Hypercorn stops gracefully on SIGINT and SIGTERM.
    server = serve(app, _hypercorn_config(settings))  # type: ignore[arg-type]
    try:
        uvloop.run(server)
    except OSError as error:  # the bind failed: the port is taken or the address is not ours
        print(
            f"prism dataplane: cannot listen on PRISM_HTTP_LISTEN={settings.http_host}:"
            f"{settings.http_port}: {error.strerror or error}",
            file=sys.stderr,
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
