"""The data plane's settings, read once from the environment at start."""

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from prism.settings import (
    ConfigError,
    directory,
    env,
    grpc_address,
    host_port,
    positive_number,
    redis_url,
    whole_number,
)
from prism.tls import Identity, authorities, identity

from .client_ip import Network


@dataclass(frozen=True)
class Settings:
    # Where the gateway listens for clients.
    http_host: str
    http_port: int
    # Processes serving that one listening socket.
    http_workers: int
    # The control plane's gRPC target: `host:port`, `unix:/path`, or one naming several.
    controlplane_addr: str
    # What proves to the control plane that this is a data plane: the shared token, or (with
    # mTLS) the client certificate. None: the certificate alone.
    dataplane_token: str | None = field(repr=False)
    # Set: the control plane is reached over TLS, its certificate checked against this CA.
    controlplane_ca: bytes | None
    controlplane_identity: Identity | None
    redis_url: str
    # Seconds the gateway waits for a Check (or Record, FilterOwned) answer before failing
    # closed with 503.
    check_deadline: float
    # Seconds the gateway waits on a non-streamed upstream response before answering 504.
    upstream_timeout: float
    # Peers whose X-Forwarded-For is believed (see client_ip.py).
    trusted_proxies: tuple[Network, ...]
    # The request log keeps about this many newest entries, none older than this many hours.
    log_max_records: int
    log_retention_hours: float
    # Where each server process keeps its outbox's spool (outbox.py): a directory that
    # outlives the process, as a restarted data plane delivers what its spools still hold.
    outbox_dir: Path


def load_settings() -> Settings:
    http_host, http_port = host_port(
        "PRISM_HTTP_LISTEN", env("PRISM_HTTP_LISTEN", "127.0.0.1:8080")
    )
    controlplane_addr = grpc_address(
        "PRISM_CONTROLPLANE_ADDR", env("PRISM_CONTROLPLANE_ADDR", "127.0.0.1:50051")
    )
    controlplane_ca = authorities("PRISM_CONTROLPLANE_TLS_CA")
    controlplane_identity = identity("PRISM_CONTROLPLANE_TLS_CERT", "PRISM_CONTROLPLANE_TLS_KEY")
    if controlplane_identity is not None and controlplane_ca is None:
        raise ConfigError(
            "PRISM_CONTROLPLANE_TLS_CERT needs PRISM_CONTROLPLANE_TLS_CA: a client certificate "
            "is presented over TLS only"
        )
    dataplane_token = env("PRISM_DATAPLANE_TOKEN", "") or None
    if dataplane_token is None and controlplane_identity is None:
        raise ConfigError(
            "PRISM_DATAPLANE_TOKEN is not set: give the data plane the control plane's token "
            "(or, with mTLS, a client certificate in PRISM_CONTROLPLANE_TLS_CERT)"
        )
    return Settings(
        http_host=http_host,
        http_port=http_port,
        http_workers=whole_number("PRISM_HTTP_WORKERS", env("PRISM_HTTP_WORKERS", "1")),
        controlplane_addr=controlplane_addr,
        dataplane_token=dataplane_token,
        controlplane_ca=controlplane_ca,
        controlplane_identity=controlplane_identity,
        redis_url=redis_url("REDIS_URL", env("REDIS_URL", "redis://127.0.0.1:6379/0")),
        check_deadline=positive_number(
            "PRISM_CHECK_DEADLINE_MS", env("PRISM_CHECK_DEADLINE_MS", "500")
        )
        / 1000,
        upstream_timeout=positive_number(
            "PRISM_UPSTREAM_TIMEOUT", env("PRISM_UPSTREAM_TIMEOUT", "600")
        ),
        trusted_proxies=_networks("PRISM_TRUSTED_PROXIES", env("PRISM_TRUSTED_PROXIES", "")),
        log_max_records=whole_number(
            "PRISM_LOG_MAX_RECORDS", env("PRISM_LOG_MAX_RECORDS", "1000000")
        ),
        log_retention_hours=positive_number(
            "PRISM_LOG_RETENTION_HOURS", env("PRISM_LOG_RETENTION_HOURS", "168")
        ),
        outbox_dir=directory("PRISM_OUTBOX_DIR", env("PRISM_OUTBOX_DIR", ".prism/outbox")),
    )


def _networks(name: str, value: str) -> tuple[Network, ...]:
    """Comma-separated IPv4/IPv6 CIDRs; a bare address is a network of one."""
    networks = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as error:
            raise ConfigError(f"{name}: {item!r} is not an IPv4 or IPv6 CIDR ({error})") from None
    return tuple(networks)
