"""The request log: one entry per request the data plane answers, built when it is over.

Every request gets exactly one `RequestLogEntry`, whoever answered it (the upstream, a denial,
a gateway error such as 404 for an unknown URL, 413, 503) and however it ended (sent whole,
a stream ended, or the client gone). `ProxyHTTPConnection` (asgi.py) calls `RequestLog.over`
once the response is over; the entry is handed to every observer in turn. Observers are
synchronous and must not block (the Redis writer queues it, metrics count it): they run on
the response's task, after the response has been sent.

What the entry holds is gathered along the way in the request's `LogFacts`: the caller's
trace id and metadata (read before anything else), the route, the client address and Check's
answer (proxy.py), and what was sent to the client (asgi.py, as it is sent). Bodies are kept
as the org's RequestLogging (from Check's answer) says: none; metadata (content type, size,
the object ids named); or full, the text up to the org's byte cap. Everything logged is
redacted (redaction.py). Response bytes are captured as they are sent, holding at most the
cap (and a small margin, so a credential cut by the cap is still recognised and redacted).
"""

import functools
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from prism.money import MICRO_USD
from prism.operations import OPERATIONS_BY_ID
from prism.v1 import authorizer_pb2, request_logging_pb2

from .client_ip import ClientAddress
from .errors import INVALID_REQUEST, GatewayError
from .headers import Trace
from .redaction import redact_text, redact_value

log = logging.getLogger("prism.dataplane")

TRACE_HEADER = "x-prism-trace-id"
METADATA_HEADER = "x-prism-metadata"
# The longest trace id a caller may send.
MAX_TRACE_ID_LENGTH = 128
# The largest x-prism-metadata a caller may send, in bytes of its JSON text.
MAX_METADATA_BYTES = 4096
# BODY_LOGGING_FULL's cap when the org set none, and the most it may set.
DEFAULT_MAX_BODY_BYTES = 16384
MAX_BODY_BYTES = 1024 * 1024
# Bytes kept past the cap so that a credential the cap cuts is still redacted whole.
_REDACTION_MARGIN = 1024
# At most this many object ids are kept per body.
MAX_IDS = 100
# Of an error response, this much is read to find its OpenAI error type and code.
_ERROR_BODY_LIMIT = 64 * 1024
# The status logged for a request whose client left before any response started (as nginx).
CLIENT_CLOSED_REQUEST = 499

_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
# OpenAI object ids (`asst_…`, `thread_…`, `file-…`, …) in a body's bytes.
_OBJECT_ID = re.compile(
    rb"\b(?:(?:asst|thread|msg|run|step|vs|vsfb|call|batch)_|file-)[A-Za-z0-9]{6,64}\b"
)
# Bytes of the previous chunk scanned again with the next, so an id split between chunks is
# still found.
_ID_OVERLAP = 80

_NONE = request_logging_pb2.BODY_LOGGING_NONE
_FULL = request_logging_pb2.BODY_LOGGING_FULL


def logged_body(
    content_type: str,
    size_bytes: int,
    ids: tuple[str, ...] = (),
    text: str = "",
    truncated: bool = False,
) -> dict[str, Any]:
    """A request's or response's body as the org's policy keeps it, in prism.v1.LoggedBody's
    JSON mapping: its content type, size and the object ids it names; with
    BODY_LOGGING_FULL also its text, redacted and cut at the cap."""
    return {
        "content_type": content_type,
        "size_bytes": size_bytes,
        "ids": list(ids),
        "text": text,
        "truncated": truncated,
    }


# json.dumps with separators builds an encoder per call; this one is built once.
_ENTRY_ENCODER = json.JSONEncoder(separators=(",", ":"))


@dataclass(frozen=True)
class RequestLogEntry:
    """One request as the data plane handled it. `document` is in prism.v1.RequestLog's JSON
    mapping (proto/prism/v1/admin.proto, the one definition of its fields; the control plane
    reads it back with json_format): built as that plain JSON rather than as the protobuf
    message because json_format costs several times as much on every request and turns
    integers in the caller's metadata into floats."""

    document: dict[str, Any]

    @functools.cached_property
    def json_line(self) -> str:
        """The entry as one line of JSON (made once, for stdout and Redis alike)."""
        return _ENTRY_ENCODER.encode(self.document)


Observer = Callable[[RequestLogEntry], None]


class BodyCapture:
    """A body seen chunk by chunk: its size, the ids it names, and (full logging) its first
    bytes; never more than the cap and a margin in memory."""

    def __init__(self, content_type: str, full: bool, cap: int) -> None:
        self.content_type = content_type
        self.size = 0
        self._full = full
        self._cap = cap
        self._kept = bytearray()
        self._ids: dict[str, None] = {}
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self._full and len(self._kept) < self._cap + _REDACTION_MARGIN:
            self._kept += chunk[: self._cap + _REDACTION_MARGIN - len(self._kept)]
        if len(self._ids) < MAX_IDS:
            for match in _OBJECT_ID.finditer(self._tail + chunk):
                self._ids.setdefault(match.group().decode("ascii"), None)
            self._tail = chunk[-_ID_OVERLAP:]

    def logged(self, secrets: Iterable[str]) -> dict[str, Any]:
        """The body as logged (`logged_body`)."""
        ids = tuple(self._ids)[:MAX_IDS]
        if not self._full:
            return logged_body(self.content_type, self.size, ids)
        text = redact_text(self._kept.decode("utf-8", errors="replace"), secrets)
        cut = text.encode()[: self._cap].decode("utf-8", errors="ignore")
        return logged_body(self.content_type, self.size, ids, cut, self.size > self._cap)


@dataclass
class LogFacts:
    """What the request log learns about one request while it is handled."""

    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    metadata: dict[str, Any] = field(default_factory=dict)
    client_ip: str = ""
    # The model the request named, when no run told a better one.
    model: str = ""
    principal: authorizer_pb2.Principal | None = None
    logging: request_logging_pb2.RequestLogging | None = None
    # Values never to appear in the log, such as the upstream credential.
    secrets: tuple[str, ...] = ()
    # A JSON body read whole.
    request_bytes: bytes | None = None
    # An upload's content type: uploads are streamed, never held, so only their metadata is
    # logged (without ids: a file's content names none the log could use).
    upload_content_type: str | None = None
    status: int = 0
    response_body: BodyCapture | None = None
    _error_body: bytearray | None = None

    def checked(self, decision: authorizer_pb2.CheckResponse) -> None:
        """Check's answer: who is calling, and what their org logs."""
        if decision.HasField("principal"):
            self.principal = decision.principal
            self.logging = decision.request_logging
        if decision.upstream.api_key:
            self.secrets = (decision.upstream.api_key,)

    def response_started(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self.status = status
        content_type = ""
        for name, value in headers:
            if name.lower() == b"content-type":
                content_type = value.decode("latin-1")
        if self.logging is not None and self.logging.bodies != _NONE:
            self.response_body = BodyCapture(
                content_type, self.logging.bodies == _FULL, body_cap(self.logging)
            )
        if status >= 400 and content_type.startswith("application/json"):
            self._error_body = bytearray()

    def response_chunk(self, chunk: bytes) -> None:
        if self.response_body is not None:
            self.response_body.feed(chunk)
        if self._error_body is not None and len(self._error_body) < _ERROR_BODY_LIMIT:
            self._error_body += chunk[: _ERROR_BODY_LIMIT - len(self._error_body)]

    def error(self) -> tuple[str, str]:
        """The OpenAI error type and code of an error response's body."""
        if not self._error_body:
            return "", ""
        try:
            error = json.loads(self._error_body)["error"]
            return str(error.get("type") or ""), str(error.get("code") or "")
        except (ValueError, KeyError, TypeError, AttributeError):
            return "", ""

    def bodies(self, upload_size: int) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The request's and the response's bodies as the org logs them; `upload_size`: the
        bytes of an upload received."""
        if self.logging is None or self.logging.bodies == _NONE:
            return None, None
        request = None
        if self.request_bytes is not None:
            capture = BodyCapture(
                "application/json", self.logging.bodies == _FULL, body_cap(self.logging)
            )
            capture.feed(self.request_bytes)
            request = capture.logged(self.secrets)
        elif self.upload_content_type is not None:
            request = logged_body(redact_text(self.upload_content_type), upload_size)
        response = self.response_body
        return request, response.logged(self.secrets) if response is not None else None


def body_cap(logging: request_logging_pb2.RequestLogging) -> int:
    return logging.max_body_bytes or DEFAULT_MAX_BODY_BYTES


def read_caller_headers(facts: LogFacts, trace: Trace, headers: Any) -> None:
    """Takes the caller's x-prism-trace-id (into `trace`, whose generated id it replaces) and
    x-prism-metadata; a malformed one is a 400 naming the header."""
    trace_id = headers.get(TRACE_HEADER)
    if trace_id is not None:
        if (
            not trace_id
            or len(trace_id) > MAX_TRACE_ID_LENGTH
            or not _PRINTABLE_ASCII.fullmatch(trace_id)
        ):
            raise GatewayError(
                400,
                f"The {TRACE_HEADER} header must be 1 to {MAX_TRACE_ID_LENGTH} printable ASCII "
                "characters.",
                INVALID_REQUEST,
                "invalid_header",
                TRACE_HEADER,
            )
        trace.trace_id = trace_id
    metadata = headers.get(METADATA_HEADER)
    if metadata is not None:
        facts.metadata = _metadata(metadata)


def _metadata(text: str) -> dict[str, Any]:
    def invalid(reason: str) -> GatewayError:
        return GatewayError(
            400,
            f"The {METADATA_HEADER} header {reason}.",
            INVALID_REQUEST,
            "invalid_header",
            METADATA_HEADER,
        )

    # The header's bytes, as received (header values are decoded as latin-1); JSON is UTF-8.
    raw = text.encode("latin-1", errors="replace")
    if len(raw) > MAX_METADATA_BYTES:
        raise invalid(f"is larger than {MAX_METADATA_BYTES} bytes")
    try:
        value = json.loads(raw, parse_constant=_not_json)
    except ValueError:
        raise invalid("is not valid JSON") from None
    if not isinstance(value, dict):
        raise invalid("must be a JSON object")
    return value


class RequestLog:
    """Builds each request's entry when it is over and hands it to the observers."""

    def __init__(self, observers: Iterable[Observer], client_address: ClientAddress) -> None:
        self._observers = tuple(observers)
        self._client_address = client_address

    def over(self, request: Any, facts: LogFacts, trace: Trace) -> None:
        """The request's response is over: `request` is the ProxyRequest, `trace` its Trace."""
        entry = self._entry(request, facts, trace)
        for observer in self._observers:
            try:
                observer(entry)
            except Exception:
                log.exception("a request log observer failed for %s", entry.document["request_id"])

    def _entry(self, request: Any, facts: LogFacts, trace: Trace) -> RequestLogEntry:
        latency_ms = (perf_counter() - trace.started) * 1000
        client_ip = facts.client_ip or self._client_address.of(request)
        charges = trace.charges
        model = next((charge.model for charge in charges if charge.model), facts.model)
        if trace.stream_error is not None:
            error_type, error_code = trace.stream_error.type, trace.stream_error.code or ""
        else:
            error_type, error_code = facts.error() if facts.status >= 400 else ("", "")
        principal = facts.principal or authorizer_pb2.Principal()
        request_body, response_body = facts.bodies(request.body.received)
        secrets = facts.secrets
        document: dict[str, Any] = {
            "request_id": trace.request_id,
            "time": facts.time.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "org_id": principal.org_id,
            "key_id": principal.key_id,
            "key_display_prefix": principal.key_display_prefix,
            "client_ip": client_ip,
            "method": request.method,
            "route": _route(request),
            "path": redact_text(request.path, secrets),
            "status": facts.status or CLIENT_CLOSED_REQUEST,
            "latency_ms": round(latency_ms, 3),
            "upstream_latency_ms": round(trace.upstream_seconds * 1000, 3),
            "model": model,
            "input_tokens": sum(charge.prompt_tokens for charge in charges),
            "cached_tokens": sum(charge.cached_tokens for charge in charges),
            "output_tokens": sum(charge.completion_tokens for charge in charges),
            "cost_usd": sum(charge.cost_micros for charge in charges) / MICRO_USD,
            "unpriced_model": any(not charge.priced for charge in charges),
            "trace_id": redact_text(trace.trace_id, secrets),
            "metadata": redact_value(facts.metadata, secrets),
            "error_type": error_type,
            "error_code": error_code,
        }
        # A body the org does not log is left out, as an unset message field is.
        if request_body is not None:
            document["request_body"] = request_body
        if response_body is not None:
            document["response_body"] = response_body
        return RequestLogEntry(document)


def _route(request: Any) -> str:
    """The template of the route the URL matched (`POST /v1/threads/{thread_id}/runs`, `GET
    /healthz`), whether or not the request got as far as its handler; "" when none did."""
    rule = request.url_rule
    if rule is None or request.method not in rule.methods:
        return ""
    if request.blueprint == "proxy":
        route = OPERATIONS_BY_ID[request.endpoint.removeprefix("proxy.")]
        # werkzeug matches HEAD to GET rules; the proxy answers it as an unknown URL.
        return route.name if request.method == route.method else ""
    return f"{request.method} {rule.rule}"


def _not_json(constant: str) -> Any:
    # NaN and Infinity are Python's extensions, not JSON.
    raise ValueError(f"{constant} is not JSON")
