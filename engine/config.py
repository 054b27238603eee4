"""The engine's settings, read once from the environment at start."""

from dataclasses import dataclass
from pathlib import Path

from prism.settings import ConfigError, env, host_port, redis_url


@dataclass(frozen=True)
class Settings:
    # Where the engine listens (the gateway's PRISM_UPSTREAM_URL points here).
    http_host: str
    http_port: int
    # The bearer key every request must present; the gateway holds it as its upstream key.
    api_key: str
    redis_url: str
    # Uploaded files' bytes live here, one file per id.
    data_dir: Path

    def __repr__(self) -> str:
        # The key never reaches a log line through a settings dump.
        return (
            f"Settings(http_host={self.http_host!r}, http_port={self.http_port}, "
            f"redis_url={self.redis_url!r}, data_dir={str(self.data_dir)!r})"
        )


def load_settings() -> Settings:
    http_host, http_port = host_port(
        "PRISM_ENGINE_LISTEN", env("PRISM_ENGINE_LISTEN", "127.0.0.1:8090")
    )
    default_redis = env("REDIS_URL", "redis://127.0.0.1:6379/0")
    return Settings(
        http_host=http_host,
        http_port=http_port,
        api_key=env("PRISM_ENGINE_API_KEY"),
        redis_url=redis_url("PRISM_ENGINE_REDIS_URL", env("PRISM_ENGINE_REDIS_URL", default_redis)),
        data_dir=_data_dir(env("PRISM_ENGINE_DATA_DIR", ".prism/engine-data")),
    )


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
