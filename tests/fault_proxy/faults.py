"""What a test can inject for the requests that match a method and a path pattern: a status
answered in the upstream's place, a delay before forwarding, a response cut off or stalled
after some events or slowed down between them, a connection dropped after the headers."""

import re
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Fault:
    # A path, or a route template whose `{name}` segments match any one path segment.
    path: str
    method: str | None = None
    # Answered in the upstream's place, with an OpenAI-style error body.
    status: int | None = None
    delay_ms: int = 0
    # An event stream ends, the connection closed mid-response, after that many events.
    cut_stream_after_events: int | None = None
    # An event stream goes silent after that many events, the connection kept open.
    stall_stream_after_events: int | None = None
    # A pause before each event of an event stream but the first: a slow stream.
    event_delay_ms: int = 0
    # The upstream's status and headers reach the client, then the connection closes.
    drop_connection: bool = False
    # How many matching requests the fault applies to before it is spent.
    times: int = 1
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        template = re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(self.path))
        self._pattern = re.compile(template)

    def matches(self, method: str, path: str) -> bool:
        same_method = self.method is None or self.method.upper() == method
        return same_method and self._pattern.fullmatch(path) is not None

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


class FaultError(ValueError):
    pass


_INTEGER_FIELDS = (
    "status",
    "delay_ms",
    "cut_stream_after_events",
    "stall_stream_after_events",
    "event_delay_ms",
)


def parse_fault(body: Any) -> Fault:
    """A Fault from the control endpoint's JSON body; FaultError says what is wrong."""
    if not isinstance(body, dict):
        raise FaultError("the body must be a JSON object")
    known = {name for name in Fault.__dataclass_fields__ if not name.startswith("_")}
    if unknown := sorted(set(body) - known):
        raise FaultError(f"unknown fields: {', '.join(unknown)}")
    if not isinstance(body.get("path"), str):
        raise FaultError("path must be a string")
    if body.get("method") is not None and not isinstance(body["method"], str):
        raise FaultError("method must be a string")
    for name in (*_INTEGER_FIELDS, "times"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise FaultError(f"{name} must be an integer")
        if value is not None and value < (1 if name == "times" else 0):
            raise FaultError(f"{name} is out of range")
    if not isinstance(body.get("drop_connection", False), bool):
        raise FaultError("drop_connection must be a boolean")
    if body.get("status") is not None and not 100 <= body["status"] <= 599:
        raise FaultError("status must be an HTTP status")
    return Fault(**{name: value for name, value in body.items() if value is not None})


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching the request, counted as used once."""
        for fault in self._faults:
            if fault.matches(method, path):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None
