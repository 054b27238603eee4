"""The control plane's `/metrics` (Prometheus text) over HTTP on PRISM_METRICS_LISTEN.

prometheus_client's own server, in a thread of its own: a scrape renders the registry (the
definitions in metrics.py, and the process's CPU, memory and garbage collection) without
touching the event loop that answers Check. One process, so no multiprocess mode.
"""

import asyncio
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server


class MetricsServer:
    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @classmethod
    def start(cls, host: str, port: int) -> "MetricsServer":
        """Listening and serving once it returns; OSError, saying which setting, when the
        port is taken or the host is not an address of this machine."""
        try:
            return cls(*start_http_server(port, host))
        except OSError as error:
            raise OSError(
                f"cannot listen on PRISM_METRICS_LISTEN={host}:{port}: {error.strerror or error}"
            ) from None

    async def stop(self) -> None:
        # shutdown() waits for the serving loop to notice, up to its poll interval: off the
        # event loop.
        await asyncio.to_thread(self._server.shutdown)
        self._server.server_close()
        self._thread.join()
