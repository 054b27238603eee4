"""`python -m engine`: serves the Assistants engine on PRISM_ENGINE_LISTEN until SIGINT or
SIGTERM, in this one process.

The listening socket is bound here and handed to Hypercorn by file descriptor, as the data
plane does (prism/serving.py): a taken port is then one clear line instead of a traceback.
"""

import sys

from prism.serving import listen_or_exit, serve
from prism.settings import load_or_exit

from .config import load_settings


def main() -> None:
    settings = load_or_exit("engine", load_settings)
    listener = listen_or_exit(
        "engine", "PRISM_ENGINE_LISTEN", settings.http_host, settings.http_port
    )
    sys.exit(serve(listener, "engine.app:worker_app()", processes=1))


if __name__ == "__main__":
    main()
