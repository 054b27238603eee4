"""`python -m engine`: serves the Assistants engine on PRISM_ENGINE_LISTEN until SIGINT or
SIGTERM, in this one process.

The listening socket is bound here and handed to Hypercorn by file descriptor, as the data
plane does: a taken port is then one clear line instead of a traceback.
"""

import logging
import socket
import sys

from hypercorn.config import Config
from hypercorn.run import run

from prism.listen import listening_socket
from prism.settings import load_or_exit

from .config import load_settings


def _hypercorn_config(listener: socket.socket) -> Config:
    config = Config()
    # Hypercorn owns the socket from here on.
    config.bind = [f"fd://{listener.detach()}"]
    config.application_path = "engine.app:worker_app()"
    config.worker_class = "uvloop"
    # 0: served in this process.
    config.workers = 0
    config.include_server_header = False
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def main() -> None:
    settings = load_or_exit("engine", load_settings)
    try:
        listener = listening_socket(settings.http_host, settings.http_port)
    except OSError as error:  # the port is taken or the address is not ours
        print(
            f"prism engine: cannot listen on PRISM_ENGINE_LISTEN={settings.http_host}:"
            f"{settings.http_port}: {error.strerror or error}",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    sys.exit(run(_hypercorn_config(listener)))


if __name__ == "__main__":
    main()
