"""Liveness and readiness: `/healthz` (the process is up) and `/readyz` (it can serve).

Ready means the control plane answers its gRPC health check with SERVING and Redis answers
PING; a 503 names whatever is down.
"""

import asyncio

from quart import Blueprint, Response, jsonify

from prism.redis_client import ERRORS, AsyncRedis, async_client

from .authorizer import Authorizer

# Seconds each dependency gets to answer a readiness probe.
_PROBE_TIMEOUT = 1.0


class Readiness:
    def __init__(self, authorizer: Authorizer, redis_url: str) -> None:
        self._authorizer = authorizer
        self._redis_url = redis_url
        self._redis: AsyncRedis | None = None

    async def open(self) -> None:
        self._redis = async_client(
            self._redis_url,
            socket_timeout=_PROBE_TIMEOUT,
            socket_connect_timeout=_PROBE_TIMEOUT,
        )

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    async def down(self) -> list[str]:
        """The dependencies that do not answer, by name."""
        control_plane_up, redis_up = await asyncio.gather(
            self._authorizer.serving(_PROBE_TIMEOUT), self._redis_answers()
        )
        return [
            name
            for name, up in (("control plane", control_plane_up), ("redis", redis_up))
            if not up
        ]

    async def _redis_answers(self) -> bool:
        assert self._redis is not None, "Readiness.open() runs before serving"
        try:
            return bool(await self._redis.ping())
        except (*ERRORS, OSError):
            return False


def health_blueprint(readiness: Readiness) -> Blueprint:
    blueprint = Blueprint("health", __name__)

    @blueprint.get("/healthz")
    async def healthz() -> Response:
        return jsonify(status="ok")

    @blueprint.get("/readyz")
    async def readyz() -> tuple[Response, int]:
        down = await readiness.down()
        if down:
            return jsonify(status="unavailable", down=down, message=f"down: {', '.join(down)}"), 503
        return jsonify(status="ready"), 200

    return blueprint
