"""What flows between prompt assembly, the chat client and the offline model: the request
(already in Chat Completions shape) and the events a completion yields."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RetrievedChunk:
    """A file_search result the run's worker retrieved for this turn, best first."""

    file_id: str
    filename: str
    text: str
    score: float


def citation_marker(index: int, chunk: RetrievedChunk) -> str:
    """How a reply cites the index-th retrieved chunk, in OpenAI's file_search style; the
    worker turns each marker in the reply into a file_citation annotation."""
    return f"【0:{index}†{chunk.filename}】"


@dataclass(frozen=True)
class ChatRequest:
    """A Chat Completions request before routing: `model` is the assistant's model name,
    which routing may map to another upstream name. `retrieved` is also rendered into
    `messages` for real models; the offline model reads it directly to quote it."""

    model: str
    messages: tuple[dict[str, Any], ...]
    temperature: float | None = None
    top_p: float | None = None
    response_format: dict[str, Any] | None = None
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    max_completion_tokens: int | None = None
    retrieved: tuple[RetrievedChunk, ...] = ()

    def wire_body(self, upstream_model: str) -> dict[str, Any]:
        """The JSON body for POST /chat/completions, always streamed with usage."""
        body: dict[str, Any] = {
            "model": upstream_model,
            "messages": list(self.messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        optional = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "response_format": self.response_format,
            "max_completion_tokens": self.max_completion_tokens,
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        # Providers reject tool_choice and parallel_tool_calls when no tools are given.
        if self.tools:
            body["tools"] = list(self.tools)
            if self.tool_choice is not None:
                body["tool_choice"] = self.tool_choice
            if self.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = self.parallel_tool_calls
        return body


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCall:
    """A function call, complete: `arguments` is the JSON string the model produced."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Provider:
    """Who answered: the routing entry, the host of its base URL ("offline" for the
    built-in model) and the model name sent upstream."""

    route: str
    host: str
    model: str


@dataclass(frozen=True)
class Finished:
    """The last event of every completion. `usage` is None when the provider sent none."""

    finish_reason: str
    usage: Usage | None
    provider: Provider


ChatEvent = TextDelta | ToolCall | Finished


class ModelError(Exception):
    """A completion that failed: `code` is the run's last_error code (`server_error` or
    `rate_limit_exceeded`); the message names the provider, never its key."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
