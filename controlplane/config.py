"""The control plane's settings, from the environment."""

from dataclasses import dataclass, field

from controlplane.credentials import master_key
from prism.settings import (
    ConfigError,
    boolean,
    env,
    grpc_address,
    host_port,
    http_url,
    positive_number,
    redis_url,
)
from prism.tls import Identity, authorities, identity

# It opens Check, which hands out upstream credentials: not a word to guess.
MIN_TOKEN_LENGTH = 24
MIN_SLOT_LEASE_SECONDS = 0.5


@dataclass(frozen=True)
class Settings:
    redis_url: str
    grpc_listen: str
    admin_token: str = field(repr=False)
    # What data planes present to prism.v1.Authorizer.
    dataplane_token: str = field(repr=False)
    # With a certificate and key the server speaks TLS only; with a client CA too, it
    # requires client certificates that CA signed.
    tls: Identity | None
    client_ca: bytes | None
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
    # How long a concurrency slot is held unless its data plane renews it (Renew).
    slot_lease_ms: int
    # Where /metrics is served over HTTP (metrics_server.py).
    metrics_host: str
    metrics_port: int

    @classmethod
    def from_env(cls) -> "Settings":
        listen = grpc_address("PRISM_GRPC_LISTEN", env("PRISM_GRPC_LISTEN", "127.0.0.1:50051"))
        metrics_host, metrics_port = host_port(
            "PRISM_METRICS_LISTEN", env("PRISM_METRICS_LISTEN", "127.0.0.1:9464")
        )
        tls = identity("PRISM_GRPC_TLS_CERT", "PRISM_GRPC_TLS_KEY")
        client_ca = authorities("PRISM_GRPC_TLS_CLIENT_CA")
        if client_ca is not None and tls is None:
            raise ConfigError(
                "PRISM_GRPC_TLS_CLIENT_CA needs PRISM_GRPC_TLS_CERT and PRISM_GRPC_TLS_KEY: "
                "client certificates are asked for over TLS only"
            )
        admin_token, dataplane_token = _admin_token(), _dataplane_token()
        if admin_token == dataplane_token:
            raise ConfigError(
                "PRISM_DATAPLANE_TOKEN is the same as PRISM_ADMIN_TOKEN: choose another, or "
                "every data plane could call prism.v1.Admin"
            )
        return cls(
            redis_url=redis_url("REDIS_URL", env("REDIS_URL", "redis://127.0.0.1:6379/0")),
            grpc_listen=listen,
            admin_token=admin_token,
            dataplane_token=dataplane_token,
            tls=tls,
            client_ca=client_ca,
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
            slot_lease_ms=_slot_lease_ms(),
            metrics_host=metrics_host,
            metrics_port=metrics_port,
        )


def _slot_lease_ms() -> int:
    name = "PRISM_SLOT_LEASE_SECONDS"
    seconds = positive_number(name, env(name, "10"))
    # Renewed every third of it, over a gRPC call and a Redis round trip: shorter would
    # lose slots of live requests.
    if seconds < MIN_SLOT_LEASE_SECONDS:
        raise ConfigError(
            f"{name}={seconds:g} is too short: at least {MIN_SLOT_LEASE_SECONDS:g} s, so that "
            "data planes renewing every third of it keep their slots"
        )
    return round(seconds * 1000)


def _admin_token() -> str:
    try:
        return env("PRISM_ADMIN_TOKEN")
    except ConfigError:
        raise ConfigError(
            "PRISM_ADMIN_TOKEN is not set: choose a long random token; Admin calls must send "
            "it as 'authorization: Bearer <token>'"
        ) from None


def _dataplane_token() -> str:
    try:
        token = env("PRISM_DATAPLANE_TOKEN")
    except ConfigError:
        raise ConfigError(
            "PRISM_DATAPLANE_TOKEN is not set: choose a long random token and give the data "
            "planes the same; only callers presenting it may call prism.v1.Authorizer"
        ) from None
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"PRISM_DATAPLANE_TOKEN is {len(token)} characters: use at least "
            f"{MIN_TOKEN_LENGTH} random ones (openssl rand -base64 32)"
        )
    return token


def _upstream_api_key() -> str:
    key = env("PRISM_UPSTREAM_API_KEY", env("OPENAI_API_KEY", ""))
    if not key:
        raise ConfigError(
            "PRISM_UPSTREAM_API_KEY (or OPENAI_API_KEY) is not set: the key Prism forwards "
            "requests to PRISM_UPSTREAM_URL with"
        )
    return key
