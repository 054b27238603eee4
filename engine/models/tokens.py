"""The engine's token count: words and punctuation marks. Not any model's tokenizer, but
deterministic and close enough for max_prompt_tokens budgets and the offline model's usage."""

import re
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(r"\w+|[^\w\s]")
# A token with the whitespace before it, so the pieces of a text concatenate back to it.
_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])")


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def split_tokens(text: str) -> list[str]:
    """The text cut into token-sized pieces whose concatenation is the text itself."""
    pieces = _PIECE.findall(text)
    tail = text[sum(len(piece) for piece in pieces) :]
    if tail:
        if pieces:
            pieces[-1] += tail
        else:
            pieces.append(tail)
    return pieces


def message_text(message: Mapping[str, Any]) -> str:
    """A Chat Completions message's text, whether its content is a string or parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def count_message_tokens(message: Mapping[str, Any]) -> int:
    """Tokens of one message as the engine budgets them: its role, text and tool calls."""
    total = 1 + count_tokens(message_text(message))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        total += count_tokens(function.get("name", "")) + count_tokens(
            function.get("arguments", "")
        )
    return total
