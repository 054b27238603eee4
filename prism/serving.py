"""How the data plane and the engine are served: Hypercorn on a socket the process binds
itself (prism/listen.py says why), and the last-resort handler that answers an unexpected
exception with OpenAI's 500 body instead of a traceback."""

import logging
import socket
import sys
from collections.abc import Callable

from hypercorn.config import Config
from hypercorn.run import run
from quart import Quart, Response, request

from prism.listen import listening_socket
from prism.openai_errors import SERVER_ERROR, error_json


def listen_or_exit(component: str, variable: str, host: str, port: int) -> socket.socket:
    """The bound socket; a taken port or an address not this machine's ends the process
    with one line naming `variable`, the setting to change."""
    try:
        return listening_socket(host, port)
    except OSError as error:
        print(
            f"prism {component}: cannot listen on {variable}={host}:{port}: "
            f"{error.strerror or error}",
            file=sys.stderr,
        )
        raise SystemExit(1) from None


def serve(listener: socket.socket, application_path: str, processes: int) -> int:
    """Serves the app Hypercorn loads from `application_path` on `listener` until SIGINT or
    SIGTERM, and returns the exit status. With one process the app is served in this one;
    with more, Hypercorn spawns them, each loading the app and accepting on `listener`."""
    config = Config()
    # Hypercorn owns the socket from here on.
    config.bind = [f"fd://{listener.detach()}"]
    config.application_path = application_path
    config.worker_class = "uvloop"
    # 0 serves in this process; Hypercorn spawns processes only for more than one.
    config.workers = processes if processes > 1 else 0
    # Neither server names itself (the data plane relays the upstream's `server` header).
    config.include_server_header = False
    # Through the root logger each process configures (worker_app), not a handler of its own.
    config.errorlog = logging.getLogger("hypercorn.error")
    return run(config)


def answer_unexpected_errors(
    app: Quart,
    log: logging.Logger,
    message: str,
    request_id: Callable[[], str] | None = None,
) -> None:
    """Any exception no other handler of `app` takes is logged to `log` with its traceback
    (and `request_id()`, when given) and answered 500 `internal_error` saying `message`: the
    client learns that it failed, never how."""

    def unexpected(error: Exception) -> Response:
        where = f"{request.method} {request.path}"
        if request_id is not None:
            where += f" ({request_id()})"
        log.error("unhandled error in %s", where, exc_info=error)
        return Response(
            error_json(message, SERVER_ERROR, "internal_error"),
            status=500,
            content_type="application/json",
        )

    app.register_error_handler(Exception, unexpected)
