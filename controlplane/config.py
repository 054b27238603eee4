"""The control plane's settings, from the environment."""

from dataclasses import dataclass, field

from controlplane.credentials import master_key
from prism.settings import (
    ConfigError,
    boolean,
    env,
    host_port,
    http_url,
    positive_number,
    redis_url,
)


@dataclass(frozen=True)
class Settings:
    redis_url: str
    grpc_listen: str
    admin_token: str
    upstream_url: str
    upstream_api_key: str = field(repr=False)
    # Seals orgs' own upstream credentials; None: SetUpstreamCredential is refused.
    master_key: bytes | None = field(repr=False)
    # Let authenticated requests through, uncounted, when Redis refuses the counters' writes.
    ratelimit_fail_open: bool
    # The sweeper looks for runs nobody saw end this often, and fetches those created this
    # long ago.
    sweep_interval_seconds: float
    sweep_after_seconds: float
    # Each sweep also charges orgs' vector-store storage, once per org and UTC day.
    charge_vector_storage: bool
    # Where /metrics is served over HTTP (metrics_server.py).
    metrics_host: str
    metrics_port: int

    @classmethod
    def from_env(cls) -> "Settings":
        listen = env("PRISM_GRPC_LISTEN", "127.0.0.1:50051")
        host_port("PRISM_GRPC_LISTEN", listen)
        metrics_host, metrics_port = host_port(
            "PRISM_METRICS_LISTEN", env("PRISM_METRICS_LISTEN", "127.0.0.1:9464")
        )
        return cls(
            redis_url=redis_url("REDIS_URL", env("REDIS_URL", "redis://127.0.0.1:6379/0")),
            grpc_listen=listen,
            admin_token=_admin_token(),
            upstream_url=http_url(
                "PRISM_UPSTREAM_URL", env("PRISM_UPSTREAM_URL", "https://api.openai.com/v1")
            ),
            upstream_api_key=_upstream_api_key(),
            master_key=master_key(env("PRISM_MASTER_KEY")) if env("PRISM_MASTER_KEY", "") else None,
            ratelimit_fail_open=boolean(
                "PRISM_RATELIMIT_FAIL_OPEN", env("PRISM_RATELIMIT_FAIL_OPEN", "false")
            ),
            sweep_interval_seconds=positive_number(
                "PRISM_SWEEP_INTERVAL_SECONDS", env("PRISM_SWEEP_INTERVAL_SECONDS", "30")
            ),
            sweep_after_seconds=positive_number(
                "PRISM_SWEEP_AFTER_SECONDS", env("PRISM_SWEEP_AFTER_SECONDS", "60")
            ),
            charge_vector_storage=boolean(
                "PRISM_CHARGE_VECTOR_STORAGE", env("PRISM_CHARGE_VECTOR_STORAGE", "true")
            ),
            metrics_host=metrics_host,
            metrics_port=metrics_port,
        )


def _admin_token() -> str:
    try:
        return env("PRISM_ADMIN_TOKEN")
    except ConfigError:
        raise ConfigError(
            "PRISM_ADMIN_TOKEN is not set: choose a long random token; Admin calls must send "
            "it as 'authorization: Bearer <token>'"
        ) from None


def _upstream_api_key() -> str:
    key = env("PRISM_UPSTREAM_API_KEY", env("OPENAI_API_KEY", ""))
    if not key:
        raise ConfigError(
            "PRISM_UPSTREAM_API_KEY (or OPENAI_API_KEY) is not set: the key Prism forwards "
            "requests to PRISM_UPSTREAM_URL with"
        )
    return key
