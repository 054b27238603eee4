"""The data plane's settings, read once from the environment at start."""

from dataclasses import dataclass

from prism.settings import env, host_port, positive_number, redis_url


@dataclass(frozen=True)
class Settings:
    # Where the gateway listens for clients.
    http_host: str
    http_port: int
    # The control plane's gRPC address (`host:port`).
    controlplane_addr: str
    redis_url: str
    # Seconds the gateway waits for a Check answer before failing closed with 503.
    check_deadline: float
    # Seconds the gateway waits on a non-streamed upstream response before answering 504.
    upstream_timeout: float


def load_settings() -> Settings:
    http_host, http_port = host_port(
        "PRISM_HTTP_LISTEN", env("PRISM_HTTP_LISTEN", "127.0.0.1:8080")
    )
    controlplane_addr = env("PRISM_CONTROLPLANE_ADDR", "127.0.0.1:50051")
    host_port("PRISM_CONTROLPLANE_ADDR", controlplane_addr)
    return Settings(
        http_host=http_host,
        http_port=http_port,
        controlplane_addr=controlplane_addr,
        redis_url=redis_url("REDIS_URL", env("REDIS_URL", "redis://127.0.0.1:6379/0")),
        check_deadline=positive_number(
            "PRISM_CHECK_DEADLINE_MS", env("PRISM_CHECK_DEADLINE_MS", "500")
        )
        / 1000,
        upstream_timeout=positive_number(
            "PRISM_UPSTREAM_TIMEOUT", env("PRISM_UPSTREAM_TIMEOUT", "600")
        ),
    )
