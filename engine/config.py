"""The engine's settings, read once from the environment at start."""

from dataclasses import dataclass, field
from pathlib import Path

from prism.settings import ConfigError, env, host_port, redis_url


@dataclass(frozen=True)
class Settings:
    # Where the engine listens (the gateway's PRISM_UPSTREAM_URL points here).
    http_host: str
    http_port: int
    # The bearer key every request must present; the gateway holds it as its upstream key.
    # Out of repr, so a settings dump never logs it.
    api_key: str = field(repr=False)
    redis_url: str
    # Uploaded files' bytes live here, one file per id.
    data_dir: Path


def load_settings() -> Settings:
    http_host, http_port = host_port(
        "PRISM_ENGINE_LISTEN", env("PRISM_ENGINE_LISTEN", "127.0.0.1:8090")
    )
    return Settings(
        http_host=http_host,
        http_port=http_port,
        api_key=env("PRISM_ENGINE_API_KEY"),
        redis_url=_redis_url(),
        data_dir=_data_dir(env("PRISM_ENGINE_DATA_DIR", ".prism/engine-data")),
    )


def _redis_url() -> str:
    """PRISM_ENGINE_REDIS_URL, else REDIS_URL; a bad value is reported by its own name."""
    if env("PRISM_ENGINE_REDIS_URL", "") != "":
        return redis_url("PRISM_ENGINE_REDIS_URL", env("PRISM_ENGINE_REDIS_URL"))
    return redis_url("REDIS_URL", env("REDIS_URL", "redis://127.0.0.1:6379/0"))


def _data_dir(value: str) -> Path:
    """The directory, made if missing: an unwritable one fails the start, not the first upload."""
    path = Path(value)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"PRISM_ENGINE_DATA_DIR={value!r} cannot be created: {error.strerror or error}"
        ) from None
    if not path.is_dir():
        raise ConfigError(f"PRISM_ENGINE_DATA_DIR={value!r} is not a directory")
    return path.resolve()
