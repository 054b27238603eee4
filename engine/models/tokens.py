"""Token counts for prompts and the offline model, with the tokenizer retrieval uses for
chunk sizes (engine/retrieval/chunking.py), so the engine counts one way everywhere."""

from collections.abc import Mapping
from typing import Any

from engine.retrieval.chunking import count_tokens, token_spans


def split_tokens(text: str) -> list[str]:
    """The text cut into token-sized pieces (each token with the whitespace before it)
    whose concatenation is the text itself."""
    ends = [end for _start, end in token_spans(text)]
    if not ends:
        return [text] if text else []
    ends[-1] = len(text)  # trailing whitespace rides on the last piece
    starts = [0, *ends[:-1]]
    return [text[start:end] for start, end in zip(starts, ends, strict=True)]


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
