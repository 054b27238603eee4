"""The built-in offline model: deterministic, no network, the same events as a provider.
It answers tool outputs when the conversation ends with them, calls a function tool when
the last user message asks for what one provides, quotes retrieved file chunks, and
otherwise replies to the last user message, quoting it."""

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from .provider import ModelProvider, answered_by
from .routing import Target
from .tokens import count_message_tokens, count_tokens, message_text, split_tokens
from .types import (
    ChatEvent,
    ChatRequest,
    Finished,
    RetrievedChunk,
    TextDelta,
    ToolCall,
    Usage,
    citation_marker,
)

# How many retrieved chunks a reply quotes, best first.
QUOTED_CHUNKS = 3
# Words that say nothing about which function a message wants.
_STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        """
a an and are as at be by can could do does for from get give has have how i in is it me
my of on or please set show tell than that the this to was what whats when where which
who will with would you your
""",
    )
)
_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|'([^']+)'")
_PROPER = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][\w-]*(?:\s+[A-Z][\w-]*)*)")
_AFTER_PREPOSITION = re.compile(r"\b(?:in|for|of|about|at|to|from|on)\s+([^.,;:!?]+)", re.I)


class OfflineModel(ModelProvider):
    """Never fails: a plan that reaches it always gets an answer."""

    async def aclose(self) -> None:
        """It holds nothing open."""

    async def stream(self, request: ChatRequest, target: Target) -> AsyncIterator[ChatEvent]:
        text, calls = _respond(request)
        pieces = split_tokens(text)
        finish_reason = "tool_calls" if calls else "stop"
        limit = request.max_completion_tokens
        if limit is not None and len(pieces) > limit:
            pieces, finish_reason = pieces[:limit], "length"
        for piece in pieces:
            yield TextDelta(piece)
            await asyncio.sleep(0)  # a token at a time, like a provider's stream
        for call in calls:
            yield call
        completion = len(pieces) + sum(
            count_tokens(call.name) + count_tokens(call.arguments) for call in calls
        )
        prompt = sum(count_message_tokens(message) for message in request.messages)
        yield Finished(finish_reason, Usage(prompt, completion), answered_by(target))


def _respond(request: ChatRequest) -> tuple[str, list[ToolCall]]:
    messages = request.messages
    if messages and messages[-1].get("role") == "tool":
        return _formatted(_from_tool_outputs(messages), request.response_format), []
    asked = next(
        (message_text(m) for m in reversed(messages) if m.get("role") == "user"), ""
    ).strip()
    call = _function_call(request, asked)
    if call is not None:
        return "", [call]
    return _formatted(_reply(asked, request.retrieved), request.response_format), []


def _reply(asked: str, retrieved: tuple[RetrievedChunk, ...]) -> str:
    opening = f'You asked: "{asked}".' if asked else "Hello! Ask me anything."
    if not retrieved:
        return opening
    quotes = [
        f'From {chunk.filename}: "{chunk.text.strip()}" {citation_marker(index, chunk)}'
        for index, chunk in enumerate(retrieved[:QUOTED_CHUNKS])
    ]
    return " ".join([opening, "Here is what the files say.", *quotes])


def _from_tool_outputs(messages: tuple[dict[str, Any], ...]) -> str:
    names: dict[str, str] = {}
    outputs: list[tuple[str, str]] = []
    for message in messages:
        for call in message.get("tool_calls") or []:
            names[call.get("id", "")] = (call.get("function") or {}).get("name", "the tool")
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        outputs.append((message.get("tool_call_id", ""), message_text(message)))
    said = [
        f"{names.get(call_id, 'the tool')} returned {output.strip()}"
        for call_id, output in reversed(outputs)
    ]
    return "Here is what I found: " + "; ".join(said) + "."


def _words(text: str) -> set[str]:
    words = _WORD.findall(_CAMEL.sub(" ", text).replace("_", " ").lower())
    # A crude stem so "forecasts" matches "forecast".
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words} - _STOPWORDS


def _function_call(request: ChatRequest, asked: str) -> ToolCall | None:
    functions = [tool["function"] for tool in request.tools if tool.get("type") == "function"]
    choice = request.tool_choice
    if not functions or choice == "none" or not asked:
        return None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        chosen = next((f for f in functions if f.get("name") == wanted), None)
    else:
        asked_words = _words(asked)

        def score(function: Mapping[str, Any]) -> int:
            named = _words(function.get("name", "")) & asked_words
            described = _words(function.get("description", "")) & asked_words
            return 2 * len(named) + len(described)

        # max() keeps the first of equals, so ties go to the earlier tool: deterministic.
        best = max(functions, key=score)
        fallback = functions[0] if choice == "required" else None
        chosen = best if score(best) >= 2 else fallback
    if chosen is None:
        return None
    arguments = json.dumps(_arguments(chosen.get("parameters") or {}, asked))
    digest = hashlib.sha256(f"{chosen['name']}\0{arguments}\0{asked}".encode()).hexdigest()
    return ToolCall(id=f"call_{digest[:24]}", name=chosen["name"], arguments=arguments)


def _arguments(schema: Mapping[str, Any], asked: str) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or properties)
    numbers = iter(_NUMBER.findall(asked))
    return {
        name: _value(spec, asked, numbers) for name, spec in properties.items() if name in required
    }


def _type(spec: Mapping[str, Any]) -> str:
    kind = spec.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    return kind


def _value(spec: Mapping[str, Any], asked: str, numbers: Iterator[str]) -> Any:
    if spec.get("enum"):
        lowered = asked.lower()
        return next((v for v in spec["enum"] if str(v).lower() in lowered), spec["enum"][0])
    kind = _type(spec)
    if kind in ("integer", "number"):
        found = next(numbers, "0")
        return int(float(found)) if kind == "integer" else float(found)
    if kind == "boolean":
        return False
    if kind == "array":
        return [_value(spec.get("items") or {}, asked, numbers)]
    if kind == "object":
        return _arguments(spec, asked)
    if kind == "null":
        return None
    return _phrase(asked)


def _phrase(asked: str) -> str:
    """The part of the message a string argument most likely wants: quoted text, else a
    proper name, else what follows a preposition, else the whole message."""
    quoted = _QUOTED.search(asked)
    if quoted:
        return next(group for group in quoted.groups() if group)
    proper = _PROPER.search(asked)
    if proper:
        return proper.group(1)
    after = _AFTER_PREPOSITION.findall(asked)
    if after:
        return after[-1].strip()
    return asked.rstrip("?!. ")


def _formatted(text: str, response_format: Mapping[str, Any] | None) -> str:
    kind = (response_format or {}).get("type", "text")
    if kind == "json_object":
        return json.dumps({"answer": text}, ensure_ascii=False)
    if kind == "json_schema":
        schema = (response_format or {}).get("json_schema", {}).get("schema") or {}
        return json.dumps(_placeholder(schema, [text]), ensure_ascii=False)
    return text


def _placeholder(schema: Mapping[str, Any], text: list[str]) -> Any:
    """A value of the schema's type; the first string gets the reply (`text` is emptied)."""
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = _type(schema) if "type" in schema else "object"
    if kind == "object":
        properties: Mapping[str, Any] = schema.get("properties") or {}
        required = schema.get("required") or list(properties)
        return {name: _placeholder(properties.get(name) or {}, text) for name in required}
    if kind == "array":
        return [_placeholder(schema["items"], text)] if schema.get("minItems") else []
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return text.pop() if text else ""
