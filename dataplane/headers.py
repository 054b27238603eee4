"""The headers the gateway adds to every response, and which upstream response headers pass.

Every response, gateway errors included, carries:
- `x-prism-request-id`: generated per request, also sent to the control plane's Check;
- `x-prism-trace-id`: the caller's own (its request header), or one generated per request;
- `x-prism-latency-ms`: time spent in the gateway until the response headers go out;
- `x-prism-upstream-latency-ms`: time spent waiting on the upstream (0 if nothing was forwarded);
- `x-prism-provider`: the upstream that answered, or `prism` when the gateway answered itself;
- `x-prism-cost` (every response but event streams): the USD charged for the runs the response
  carries, with 6 decimals (`0.000000` when none: the gateway's own errors, most routes), as
  the control plane charged each run when first seen; `x-prism-model-used`: their models,
  distinct, comma-separated, in the order shown (absent when the response carries no run).
  An event stream's headers go out before its run ends, so it carries both instead as SSE
  comment lines after its last event (`: x-prism-cost 0.001234`), which SSE clients ignore.

Every response to a request Check answered (forwarded, denied, or a gateway error after it)
also carries the client's rate-limit status, named and formatted as OpenAI sends its own:
`x-ratelimit-{limit,remaining,reset}-requests` when a requests-per-minute limit applies,
the `-tokens` trio when a tokens-per-minute limit does, and `x-prism-ratelimit-shadow` naming
the shadow limits the request went over. The upstream's own `x-ratelimit-*` headers never
pass: they describe the gateway's shared upstream account (every tenant's traffic), not the
client's limits, and a client or SDK pacing itself by them would be misled.
"""

import os
from collections.abc import Iterable
from time import perf_counter

from quart import Response

from prism.money import MICRO_USD
from prism.rate_limit_units import REPORTED_UNITS
from prism.v1 import authorizer_pb2

from .errors import GatewayError

# Headers that describe one connection, not the message (RFC 9110 7.6.1), so they are never
# relayed in either direction; `expect` too, since the gateway answers `100 Continue` itself.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
    }
)

# Response headers the gateway's server sets itself; relaying the upstream's would duplicate
# them. `content-length` is kept only on bodies relayed byte for byte as they arrive, so a
# download keeps its length; a body read whole gets its length from the gateway's server.
_NOT_RELAYED_WHOLE = HOP_BY_HOP | {b"date", b"content-length"}
_NOT_RELAYED_STREAMED = HOP_BY_HOP | {b"date"}
_UPSTREAM_RATE_LIMITS = b"x-ratelimit-"

GATEWAY_PROVIDER = "prism"
EVENT_STREAM = "text/event-stream"


class Trace:
    """What the gateway measured about one request, stamped on its response."""

    __slots__ = (
        "charges",
        "limits",
        "provider",
        "request_id",
        "started",
        "stream_error",
        "trace_id",
        "upstream_seconds",
    )

    def __init__(self) -> None:
        # 16 random bytes each, drawn in one call.
        random = os.urandom(32).hex()
        self.request_id = "req_" + random[:32]
        # The caller's x-prism-trace-id replaces it (request_log.read_caller_headers).
        self.trace_id = random[32:]
        self.started = perf_counter()
        self.upstream_seconds = 0.0
        self.provider = GATEWAY_PROVIDER
        # The rate-limit headers from Check's answer; none before it.
        self.limits: list[tuple[str, str]] = []
        # The charges of the runs the response carries, from every Record's answer.
        self.charges: list[authorizer_pb2.RunCharge] = []
        # The error a 200 event stream ended with (its `error` event), if it broke off.
        self.stream_error: GatewayError | None = None


def stamp(response: Response, trace: Trace) -> Response:
    headers = response.headers
    headers["x-prism-request-id"] = trace.request_id
    headers["x-prism-trace-id"] = trace.trace_id
    headers["x-prism-latency-ms"] = _milliseconds(perf_counter() - trace.started)
    headers["x-prism-upstream-latency-ms"] = _milliseconds(trace.upstream_seconds)
    headers["x-prism-provider"] = trace.provider
    for name, value in trace.limits:
        headers[name] = value
    if response.mimetype != EVENT_STREAM:
        headers["x-prism-cost"] = cost_usd(trace.charges)
        if models := models_used(trace.charges):
            headers["x-prism-model-used"] = models
    return response


def cost_usd(charges: Iterable[authorizer_pb2.RunCharge]) -> str:
    """The charges' sum in USD with 6 decimals, exact: `0.001234`."""
    micros = sum(charge.cost_micros for charge in charges)
    return f"{micros // MICRO_USD}.{micros % MICRO_USD:06d}"


def models_used(charges: Iterable[authorizer_pb2.RunCharge]) -> str:
    return ", ".join(dict.fromkeys(charge.model for charge in charges if charge.model))


def stream_trailer(trace: Trace) -> bytes:
    """The SSE comment lines ending a relayed event stream: its cost and models."""
    lines = f": x-prism-cost {cost_usd(trace.charges)}\n"
    if models := models_used(trace.charges):
        lines += f": x-prism-model-used {models}\n"
    return lines.encode() + b"\n"


def rate_limit_headers(decision: authorizer_pb2.CheckResponse) -> list[tuple[str, str]]:
    """The client's rate-limit status from Check's answer, as OpenAI's headers."""
    headers = []
    for unit in REPORTED_UNITS:
        if decision.HasField(unit):
            status: authorizer_pb2.RateLimitStatus = getattr(decision, unit)
            headers += [
                (f"x-ratelimit-limit-{unit}", str(status.limit)),
                (f"x-ratelimit-remaining-{unit}", str(status.remaining)),
                (f"x-ratelimit-reset-{unit}", go_duration(status.reset_ms)),
            ]
    if decision.shadow_exceeded:
        headers.append(("x-prism-ratelimit-shadow", ", ".join(decision.shadow_exceeded)))
    return headers


def go_duration(milliseconds: int) -> str:
    """A duration as Go's time.Duration prints it, which is how OpenAI's reset headers read:
    `0s`, `20ms`, `1s`, `1.5s`, `6m0s`, `1h2m3s`."""
    if milliseconds <= 0:
        return "0s"
    if milliseconds < 1000:
        return f"{milliseconds}ms"
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, fraction = divmod(rest, 1000)
    text = f"{seconds}.{fraction:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def _milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def end_to_end(
    raw: Iterable[tuple[bytes, bytes]], dropped: frozenset[bytes]
) -> list[tuple[bytes, bytes]]:
    """`raw` with lowercase names, less `dropped` and the headers its `connection` header names."""
    kept = []
    named: set[bytes] = set()
    for name, value in raw:
        lowered = name.lower()
        if lowered == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
        if lowered not in dropped:
            kept.append((lowered, value))
    if named:
        kept = [header for header in kept if header[0] not in named]
    return kept


def relayed_response_headers(
    raw: Iterable[tuple[bytes, bytes]], streamed: bool
) -> list[tuple[str, str]]:
    """The upstream's response headers, as the client receives them."""
    dropped = _NOT_RELAYED_STREAMED if streamed else _NOT_RELAYED_WHOLE
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in end_to_end(raw, dropped)
        if not name.startswith(_UPSTREAM_RATE_LIMITS)
    ]
