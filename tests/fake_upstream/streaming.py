"""Runs streamed as server-sent events, `event: <name>\\ndata: <json>\\n\\n` each, ending
with `event: done\\ndata: [DONE]` as OpenAI's stream does."""

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

from quart import Response

from .store import Event, Run

DONE = b"event: done\ndata: [DONE]\n\n"


def sse(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def run_stream(happened: Iterable[Event], run: Run) -> Response:
    """Streams the events that already `happened` (the run's creation), then the run's
    pending work, one event at a time as it is produced."""
    # Serialised now: the objects they carry change as soon as the run moves on.
    head = [sse(name, data) for name, data in happened]

    async def body() -> AsyncIterator[bytes]:
        try:
            for chunk in head:
                yield chunk
            while (event := run.next_event()) is not None:
                yield sse(*event)
            yield DONE
        finally:
            # A client that hangs up mid-stream must not leave the thread locked by a
            # run that never finishes.
            run.settle()

    response = Response(body(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.timeout = None  # a stream lasts as long as the run, not RESPONSE_TIMEOUT
    return response
