"""Which provider serves a model. PRISM_ENGINE_MODELS names a TOML file:

    [models."gpt-4o*"]                       # an exact model name or a glob
    base_url = "https://api.openai.com/v1"
    api_key_env = "OPENAI_API_KEY"           # the NAME of the variable holding the key
    model = "gpt-4o-mini"                    # upstream name; default: the requested one
    fallbacks = ["local"]                    # other entries, tried in this order
    connect_timeout = 5                      # seconds (default 10)
    read_timeout = 60                        # seconds between bytes (default 120)

    [models.local]
    base_url = "http://127.0.0.1:11434/v1"

    [models.backup]
    offline = true                           # the built-in offline model

An exact name wins over globs; globs are tried in file order. Fallbacks are not followed
transitively: a route's own list is the whole plan. With no file every model is served by
the built-in offline model.
"""

import fnmatch
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

ENV_VAR = "PRISM_ENGINE_MODELS"
OFFLINE_ROUTE = "offline"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 120.0
_KEYS = {
    "base_url",
    "api_key_env",
    "model",
    "fallbacks",
    "offline",
    "connect_timeout",
    "read_timeout",
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ProviderKind(StrEnum):
    """Which ModelProvider (provider.py) serves a route."""

    CHAT_COMPLETIONS = "chat_completions"  # an OpenAI-compatible endpoint at base_url
    OFFLINE = "offline"  # the built-in offline model


class RoutingConfigError(ValueError):
    """A bad models file, said in one line naming the file and the entry."""


class NoRouteError(LookupError):
    """The models file has no entry matching the model."""


@dataclass(frozen=True)
class Route:
    name: str
    kind: ProviderKind
    base_url: str | None  # None for the offline model
    model: str | None
    fallbacks: tuple[str, ...]
    connect_timeout: float
    read_timeout: float
    # Read from the environment once at load; kept out of repr so it never reaches a log.
    api_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Target:
    """One provider to try for a request, in the order of the plan."""

    route: str
    kind: ProviderKind
    base_url: str | None  # None for the offline model
    model: str  # the model name sent upstream
    connect_timeout: float
    read_timeout: float
    api_key: str | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        if self.base_url is None:
            return OFFLINE_ROUTE
        return self.base_url.split("://", 1)[-1].split("/", 1)[0]


class Router:
    def __init__(self, routes: Mapping[str, Route] | None = None, source: str = "") -> None:
        # None: no file configured, everything goes to the offline model.
        self._routes = dict(routes) if routes is not None else None
        self._source = source

    def resolve(self, model: str) -> tuple[Target, ...]:
        """The providers to try for `model`, primary first, then its fallbacks."""
        if self._routes is None:
            return (_offline_target(model),)
        primary = self._routes.get(model) or next(
            (route for name, route in self._routes.items() if fnmatch.fnmatchcase(model, name)),
            None,
        )
        if primary is None:
            raise NoRouteError(f"{self._source}: no entry matches model {model!r}")
        plan = [primary, *(self._routes[name] for name in primary.fallbacks)]
        return tuple(_target(route, model) for route in plan)


def _offline_target(model: str) -> Target:
    return Target(
        OFFLINE_ROUTE,
        ProviderKind.OFFLINE,
        None,
        model,
        DEFAULT_CONNECT_TIMEOUT,
        DEFAULT_READ_TIMEOUT,
    )


def _target(route: Route, model: str) -> Target:
    return Target(
        route=route.name,
        kind=route.kind,
        base_url=route.base_url,
        model=route.model or model,
        connect_timeout=route.connect_timeout,
        read_timeout=route.read_timeout,
        api_key=route.api_key,
    )


def router_from_env(environ: Mapping[str, str] | None = None) -> Router:
    environ = os.environ if environ is None else environ
    path = environ.get(ENV_VAR, "").strip()
    if not path:
        return Router()
    return load_routes(Path(path), environ)


def load_routes(path: Path, environ: Mapping[str, str]) -> Router:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RoutingConfigError(f"{path}: cannot read ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise RoutingConfigError(f"{path}: not valid TOML ({error})") from None
    except UnicodeDecodeError:
        raise RoutingConfigError(f"{path}: not UTF-8 text") from None
    unknown = set(document) - {"models"}
    if unknown:
        raise RoutingConfigError(f"{path}: unknown table {sorted(unknown)[0]!r}, expected [models]")
    entries = document.get("models")
    if not isinstance(entries, dict) or not entries:
        raise RoutingConfigError(f'{path}: no [models."NAME"] entries')
    routes = {name: _route(path, name, entry, environ) for name, entry in entries.items()}
    for route in routes.values():
        for fallback in route.fallbacks:
            if fallback not in routes:
                raise _entry_error(path, route.name, f"fallback {fallback!r} is not an entry")
            if fallback == route.name:
                raise _entry_error(path, route.name, "lists itself as a fallback")
    return Router(routes, str(path))


def _entry_error(path: Path, name: str, problem: str) -> RoutingConfigError:
    return RoutingConfigError(f'{path}: models."{name}": {problem}')


def _route(path: Path, name: str, entry: Any, environ: Mapping[str, str]) -> Route:
    def fail(problem: str) -> RoutingConfigError:
        return _entry_error(path, name, problem)

    if not isinstance(entry, dict):
        raise fail("must be a table")
    if "api_key" in entry:
        # Never echo the value: it is probably a real key.
        raise fail("api_key is not allowed; put the key in a variable and name it in api_key_env")
    unknown = set(entry) - _KEYS
    if unknown:
        raise fail(f"unknown setting {sorted(unknown)[0]!r}")
    offline = entry.get("offline", False)
    if not isinstance(offline, bool):
        raise fail("offline must be true or false")
    base_url = entry.get("base_url")
    if offline:
        if base_url is not None or "api_key_env" in entry:
            raise fail("an offline entry takes no base_url or api_key_env")
    elif not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise fail("base_url must be an http:// or https:// URL (or set offline = true)")
    model = entry.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise fail("model must be a non-empty string")
    fallbacks = entry.get("fallbacks", [])
    if not isinstance(fallbacks, list) or not all(isinstance(f, str) for f in fallbacks):
        raise fail("fallbacks must be a list of entry names")
    timeouts = []
    for setting, default in (
        ("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
        ("read_timeout", DEFAULT_READ_TIMEOUT),
    ):
        value = entry.get(setting, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise fail(f"{setting} must be a positive number of seconds")
        timeouts.append(float(value))
    api_key_env = entry.get("api_key_env")
    api_key = None
    if api_key_env is not None:
        if not isinstance(api_key_env, str) or not _ENV_NAME.fullmatch(api_key_env):
            raise fail("api_key_env must be the name of an environment variable")
        api_key = environ.get(api_key_env) or None
        if api_key is None:
            # Not echoed: someone may have pasted the key itself here.
            raise fail("the variable named in api_key_env is not set")
    return Route(
        name=name,
        kind=ProviderKind.OFFLINE if offline else ProviderKind.CHAT_COMPLETIONS,
        base_url=None if offline else base_url.rstrip("/"),
        model=model,
        fallbacks=tuple(dict.fromkeys(fallbacks)),
        connect_timeout=timeouts[0],
        read_timeout=timeouts[1],
        api_key=api_key,
    )
