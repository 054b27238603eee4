"""The data plane's Prometheus metrics, and `/metrics`, which serves them unauthenticated.

A data plane is one process or several (PRISM_HTTP_WORKERS), and a scrape reaches whichever
worker accepts it; so the numbers are kept in prometheus_client's multiprocess mode: every
process writes its samples to files in PROMETHEUS_MULTIPROC_DIR (a private directory
`python -m dataplane` makes per run, before any worker imports prometheus_client, which picks
its storage at import) and a scrape merges every process's files. Only counters and histograms
are kept: their files are summed, and a worker that ends leaves its counts in, so totals never
go backwards and no per-process bookkeeping (`mark_process_dead`, for live gauges) is needed.

Labels are bounded: route templates, methods, status codes, the gateway's own error codes.
Never paths, object ids, keys or orgs.
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from quart import Blueprint, Response

from .request_log import RequestLogEntry

# From a few milliseconds (a denial, a cached read) to the upstream's slowest answers; a
# stream's whole duration lands in +Inf when it outlasts a minute.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Check is one round trip to the control plane and one to Redis: sub-millisecond to its
# deadline (PRISM_CHECK_DEADLINE_MS, 500 by default).
_CHECK_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# The route label of a request no route of the table matched.
UNMATCHED = "unmatched"
# Served by the data plane itself (health.py and here), outside the route table.
_OWN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# An unknown URL's method is whatever the client sent; any other is counted as "other".
_METHODS = frozenset({"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"})

REQUESTS = Counter(
    "prism_http_requests_total",
    "Requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "prism_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by route template.",
    ["route"],
    buckets=_LATENCY_BUCKETS,
)
UPSTREAM_SECONDS = Histogram(
    "prism_upstream_request_duration_seconds",
    "Time the upstream took to answer a forwarded request, by route template.",
    ["route"],
    buckets=_LATENCY_BUCKETS,
)
DENIALS = Counter(
    "prism_denials_total",
    "Error responses the gateway made itself (Check's denials and its own errors, not the "
    "upstream's), by error code.",
    ["code"],
)
CHECK_RPC_SECONDS = Histogram(
    "prism_check_rpc_duration_seconds",
    "Time a Check call to the control plane took, as the data plane saw it, failures included.",
    buckets=_CHECK_BUCKETS,
)


def observe(entry: RequestLogEntry) -> None:
    """Counts one finished request: a request log observer."""
    document = entry.document
    method = document["method"] if document["method"] in _METHODS else "other"
    route = document["route"] or _own_route(method, document["path"])
    REQUESTS.labels(route, method, str(document["status"])).inc()
    REQUEST_SECONDS.labels(route).observe(document["latency_ms"] / 1000)
    # Exactly 0 when nothing was sent upstream: the upstream took no time.
    if document["upstream_latency_ms"]:
        UPSTREAM_SECONDS.labels(route).observe(document["upstream_latency_ms"] / 1000)
    elif document["error_type"]:
        # An error body and nothing forwarded: the gateway's own refusal, whose codes are
        # its own and the control plane's, never the upstream's.
        DENIALS.labels(document["error_code"] or "none").inc()


def _own_route(method: str, path: str) -> str:
    """The data plane's own endpoints are named by their path; any other URL no route of
    the table matched is `unmatched`, whatever its path."""
    if method in ("GET", "HEAD") and path in _OWN_PATHS:
        return f"{method} {path}"
    return UNMATCHED


def _registry() -> CollectorRegistry:
    """Every process's samples under `python -m dataplane`; this process's alone when the
    app is served by other means, without a multiprocess directory."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


def metrics_blueprint() -> Blueprint:
    blueprint = Blueprint("metrics", __name__)
    registry = _registry()

    @blueprint.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    return blueprint
