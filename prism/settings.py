"""Reading configuration from the environment.

A bad or missing setting stops a process at start with one clear line, so every
component reads its settings through these helpers and `load_or_exit`.
"""

import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from prism import redis_client

T = TypeVar("T")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable and the fix."""


def env(name: str, default: str | None = None) -> str:
    """The variable's value, or the default; ConfigError when neither is set."""
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if default is None:
        raise ConfigError(f"{name} is not set")
    return default


def host_port(name: str, value: str) -> tuple[str, int]:
    """Parses `host:port` or `[v6]:port`."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name}={value!r} is not host:port (e.g. 127.0.0.1:8080)")
    return host, int(port)


# gRPC's address of a Unix domain socket: `unix:/run/prism/controlplane.sock`.
UNIX_SOCKET_PREFIX = "unix:"


def grpc_address(name: str, value: str) -> str:
    """A gRPC address: `host:port`, `[v6]:port`, or a Unix domain socket's `unix:/absolute/path`
    (for planes on one host)."""
    if value.startswith(UNIX_SOCKET_PREFIX):
        path = unix_socket_path(value)
        # One slash only: gRPC reads `unix://x` as a URI, which is a different path.
        if not path.startswith("/") or path.startswith("//"):
            raise ConfigError(
                f"{name}={value!r} is not a Unix socket address: unix:/absolute/path (e.g. "
                "unix:/run/prism/controlplane.sock)"
            )
        return value
    host_port(name, value)
    return value


def unix_socket_path(address: str) -> str:
    """The filesystem path of a `unix:` gRPC address."""
    return address.removeprefix(UNIX_SOCKET_PREFIX)


def http_url(name: str, value: str) -> str:
    """An http(s) URL, without a trailing slash."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}={value!r} is not an http(s) URL")
    return value.rstrip("/")


def redis_url(name: str, value: str) -> str:
    """A single Redis's URL, or a Redis Cluster node's (`redis+cluster://`)."""
    try:
        redis_client.check_url(value)
    except redis_client.UnusableRedisUrl as error:
        raise ConfigError(f"{name}={value!r} {error}") from None
    return value


def positive_number(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{name}={value!r} is not a positive number")
    return number


def whole_number(name: str, value: str) -> int:
    """1 or more, in ASCII digits (`"²".isdigit()` is true, but int() refuses it)."""
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ConfigError(f"{name}={value!r} is not a whole number (1 or more)")
    return int(value)


def boolean(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean (true or false)")


def directory(name: str, value: str) -> Path:
    """The directory, made if missing: one that cannot be made or written fails the start,
    not the first write."""
    path = Path(value)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or error
        raise ConfigError(f"{name}={value!r} cannot be created: {reason}") from None
    if not path.is_dir():
        raise ConfigError(f"{name}={value!r} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{name}={value!r} is not writable by this user")
    return path.resolve()


def load_or_exit(component: str, load: Callable[[], T]) -> T:
    """Runs a settings loader; on ConfigError prints one line and exits with status 2."""
    try:
        return load()
    except ConfigError as error:
        print(f"prism {component}: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
