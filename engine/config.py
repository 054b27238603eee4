"""The engine's settings, read once from the environment at start."""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from prism.settings import (
    ConfigError,
    directory,
    env,
    host_port,
    http_url,
    positive_number,
    redis_url,
)

from .models.routing import Router, RoutingConfigError, router_from_env
from .retrieval.embeddings import EmbeddingsEndpoint

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
    # Which provider serves each model (PRISM_ENGINE_MODELS); offline when unset.
    models: Router
    # Run workers in this process, and how long a claimed run stays leased without a renewal
    # before another process takes it over.
    run_workers: int
    run_lease_seconds: float
    # The embeddings endpoint for hybrid vector-store search; None ranks by BM25 alone.
    embeddings: EmbeddingsEndpoint | None = None


def load_settings() -> Settings:
    http_host, http_port = host_port(
        "PRISM_ENGINE_LISTEN", env("PRISM_ENGINE_LISTEN", "127.0.0.1:8090")
    )
    return Settings(
        http_host=http_host,
        http_port=http_port,
        api_key=env("PRISM_ENGINE_API_KEY"),
        redis_url=_redis_url(),
        data_dir=directory(
            "PRISM_ENGINE_DATA_DIR", env("PRISM_ENGINE_DATA_DIR", ".prism/engine-data")
        ),
        models=_models(),
        run_workers=max(
            1,
            int(positive_number("PRISM_ENGINE_RUN_WORKERS", env("PRISM_ENGINE_RUN_WORKERS", "4"))),
        ),
        run_lease_seconds=positive_number(
            "PRISM_ENGINE_RUN_LEASE_SECONDS", env("PRISM_ENGINE_RUN_LEASE_SECONDS", "15")
        ),
        embeddings=_embeddings(),
    )


def _embeddings() -> EmbeddingsEndpoint | None:
    """PRISM_ENGINE_EMBEDDINGS_URL (an OpenAI-compatible base URL), its model, and the name
    of the variable holding its key (the key itself is never a setting, so never echoed)."""
    raw_url = env("PRISM_ENGINE_EMBEDDINGS_URL", "")
    if not raw_url:
        return None
    url = http_url("PRISM_ENGINE_EMBEDDINGS_URL", raw_url)
    model = env("PRISM_ENGINE_EMBEDDINGS_MODEL", "text-embedding-3-small")
    key_env = env("PRISM_ENGINE_EMBEDDINGS_API_KEY_ENV", "")
    api_key = None
    if key_env:
        if not _ENV_NAME.fullmatch(key_env):
            # Not echoed: someone may have pasted the key itself here.
            raise ConfigError(
                "PRISM_ENGINE_EMBEDDINGS_API_KEY_ENV must be the name of an environment "
                "variable holding the key, not the key"
            )
        api_key = os.environ.get(key_env, "").strip() or None
        if api_key is None:
            raise ConfigError(
                f"PRISM_ENGINE_EMBEDDINGS_API_KEY_ENV names {key_env}, which is not set"
            )
    return EmbeddingsEndpoint(url, model, api_key)


def _models() -> Router:
    try:
        return router_from_env()
    except (RoutingConfigError, OSError) as error:
        raise ConfigError(f"PRISM_ENGINE_MODELS: {error}") from None


def _redis_url() -> str:
    """PRISM_ENGINE_REDIS_URL, else REDIS_URL; a bad value is reported by its own name."""
    if env("PRISM_ENGINE_REDIS_URL", "") != "":
        return redis_url("PRISM_ENGINE_REDIS_URL", env("PRISM_ENGINE_REDIS_URL"))
    return redis_url("REDIS_URL", env("REDIS_URL", "redis://127.0.0.1:6379/0"))
