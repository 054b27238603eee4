"""An OpenAI-compatible Chat Completions endpoint as a ModelProvider: POSTs the request,
streamed, and turns the SSE chunks into the engine's events as they arrive."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from .provider import ModelProvider, ProviderFailure, answered_by
from .routing import Target
from .types import ChatEvent, ChatRequest, Finished, TextDelta, ToolCall, Usage

# How much of a failed response's body goes into the error (providers' error JSON is short).
_ERROR_BODY_BYTES = 4096


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


class ChatCompletionsProvider(ModelProvider):
    """One per process: its httpx.AsyncClient keeps connections to the endpoints alive."""

    def __init__(self) -> None:
        self._http = httpx.AsyncClient()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def stream(self, request: ChatRequest, target: Target) -> AsyncIterator[ChatEvent]:
        headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
        timeout = httpx.Timeout(
            target.read_timeout, connect=target.connect_timeout, pool=target.connect_timeout
        )
        try:
            async with self._http.stream(
                "POST",
                f"{target.base_url}/chat/completions",
                json=request.wire_body(target.model),
                headers=headers,
                timeout=timeout,
            ) as response:
                if response.status_code != 200:
                    raise await _status_failure(response, target)
                async for event in _read_stream(response, target):
                    yield event
        except httpx.TimeoutException as error:
            raise ProviderFailure(f"timed out ({type(error).__name__})", retryable=True) from None
        except httpx.TransportError as error:
            raise ProviderFailure(
                f"connection error ({type(error).__name__}: {error})", retryable=True
            ) from None


async def _status_failure(response: httpx.Response, target: Target) -> ProviderFailure:
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= _ERROR_BODY_BYTES:
            break
    detail = _error_message(body[:_ERROR_BODY_BYTES])
    if target.api_key:
        # Some providers quote the key they were given in a 401's message.
        detail = detail.replace(target.api_key, "[redacted]")
    status = response.status_code
    message = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429:
        return ProviderFailure(message, retryable=True, code="rate_limit_exceeded")
    return ProviderFailure(message, retryable=status >= 500)


def _error_message(body: bytes) -> str:
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return body.decode("utf-8", "replace").strip()[:300]
    if isinstance(error, dict):
        return str(error.get("message", ""))[:300]
    return str(error or "")[:300]


async def _read_stream(response: httpx.Response, target: Target) -> AsyncIterator[ChatEvent]:
    """Parses the SSE stream of chat.completion.chunk objects up to `data: [DONE]`."""
    calls: dict[int, _PartialCall] = {}
    finish_reason: str | None = None
    usage: Usage | None = None
    done = False
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, comments (": keep-alive"), event names
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            break
        try:
            chunk = json.loads(data)
        except ValueError:
            raise ProviderFailure("sent a chunk that is not JSON", retryable=True) from None
        if chunk.get("error"):
            detail = _error_message(json.dumps(chunk).encode())
            raise ProviderFailure(f"error in stream: {detail}", retryable=True)
        if chunk.get("usage"):
            usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # the engine asks for one choice
            delta = choice.get("delta") or {}
            if delta.get("content"):
                yield TextDelta(delta["content"])
            for fragment in delta.get("tool_calls") or []:
                _merge_call(calls, fragment)
            if choice.get("finish_reason"):
                finish_reason = choice["finish_reason"]
    # A provider that omits [DONE] but said why it finished has still answered in full.
    if not done and finish_reason is None:
        raise ProviderFailure("stream ended before the answer finished", retryable=True)
    for index in sorted(calls):
        call = calls[index]
        yield ToolCall(id=call.id, name=call.name, arguments=call.arguments or "{}")
    yield Finished(finish_reason or "stop", usage, answered_by(target))


def _merge_call(calls: dict[int, _PartialCall], fragment: dict[str, Any]) -> None:
    # The first fragment of a call carries its id and name; later ones add argument text.
    call = calls.setdefault(int(fragment.get("index", 0)), _PartialCall())
    if fragment.get("id"):
        call.id = fragment["id"]
    function = fragment.get("function") or {}
    if function.get("name"):
        call.name += function["name"]
    if function.get("arguments"):
        call.arguments += function["arguments"]


def _usage(raw: dict[str, Any]) -> Usage:
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
    )
