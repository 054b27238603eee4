"""Tokens and the spec's static chunking strategy.

Tokenizer: OpenAI counts chunk sizes in tiktoken tokens, but tiktoken's wheel ships no
encodings: it downloads them on first use, which the engine must not need (it works with
no network). So tokens here are a deterministic approximation of a BPE tokenizer: a run
of letters is one token per 8 letters (common words are one token, long ones several),
digits go in groups of up to 3 (as cl100k does), each CJK character and each other
non-space character (punctuation, symbols) is a token, and whitespace belongs to no
token. Counts are therefore close to, not equal to, OpenAI's for the same text.

Chunking: a chunk is a window of at most `max_chunk_size_tokens` tokens, and each window
starts `max_chunk_size_tokens - chunk_overlap_tokens` tokens after the previous one, so
consecutive chunks share exactly `chunk_overlap_tokens` tokens. A chunk is the source text
from its first token's start to its last token's end, with those character offsets kept
for citations. Re-tokenizing a chunk's text gives back exactly its tokens, so sizes can be
checked from the text alone.
"""

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from engine.retrieval.errors import ParamError

DEFAULT_MAX_CHUNK_SIZE_TOKENS = 800
DEFAULT_CHUNK_OVERLAP_TOKENS = 400
MIN_CHUNK_SIZE_TOKENS = 100
MAX_CHUNK_SIZE_TOKENS = 4096

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W\d_{_CJK}]{{1,8}}|\d{{1,3}}|\S")


def token_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) character offsets of each token of `text`."""
    return [match.span() for match in _TOKEN.finditer(text)]


def count_tokens(text: str) -> int:
    return sum(1 for _ in _TOKEN.finditer(text))


@dataclass(frozen=True)
class ChunkingStrategy:
    max_chunk_size_tokens: int = DEFAULT_MAX_CHUNK_SIZE_TOKENS
    chunk_overlap_tokens: int = DEFAULT_CHUNK_OVERLAP_TOKENS

    def to_response(self) -> dict[str, Any]:
        """The spec's StaticChunkingStrategyResponseParam, for VectorStoreFileObject."""
        return {
            "type": "static",
            "static": {
                "max_chunk_size_tokens": self.max_chunk_size_tokens,
                "chunk_overlap_tokens": self.chunk_overlap_tokens,
            },
        }


def chunking_strategy(
    param: Mapping[str, Any] | None, name: str = "chunking_strategy"
) -> ChunkingStrategy:
    """Validate a ChunkingStrategyRequestParam (`auto`, `static` or absent) into the
    strategy to use. Raises ParamError naming the offending field under `name`."""
    if param is None:
        return ChunkingStrategy()
    if not isinstance(param, Mapping):
        raise ParamError(name, f"Invalid type for '{name}': expected an object.")
    kind = param.get("type")
    if kind == "auto":
        _reject_extra(param, {"type"}, name)
        return ChunkingStrategy()
    if kind != "static":
        raise ParamError(
            f"{name}.type",
            f"Invalid value for '{name}.type': expected one of 'auto' or 'static', got {kind!r}.",
        )
    _reject_extra(param, {"type", "static"}, name)
    static = param.get("static")
    static_name = f"{name}.static"
    if not isinstance(static, Mapping):
        raise ParamError(static_name, f"Missing or invalid '{static_name}': expected an object.")
    _reject_extra(static, {"max_chunk_size_tokens", "chunk_overlap_tokens"}, static_name)
    size = _integer(static, "max_chunk_size_tokens", static_name)
    overlap = _integer(static, "chunk_overlap_tokens", static_name)
    if not MIN_CHUNK_SIZE_TOKENS <= size <= MAX_CHUNK_SIZE_TOKENS:
        raise ParamError(
            f"{static_name}.max_chunk_size_tokens",
            f"Invalid '{static_name}.max_chunk_size_tokens': {size} is not between "
            f"{MIN_CHUNK_SIZE_TOKENS} and {MAX_CHUNK_SIZE_TOKENS}.",
        )
    if overlap < 0 or overlap * 2 > size:
        raise ParamError(
            f"{static_name}.chunk_overlap_tokens",
            f"Invalid '{static_name}.chunk_overlap_tokens': {overlap} must be at least 0 and "
            f"must not exceed half of max_chunk_size_tokens ({size}).",
        )
    return ChunkingStrategy(size, overlap)


def _integer(param: Mapping[str, Any], key: str, parent: str) -> int:
    value = param.get(key)
    # bool is an int in Python but not an integer in JSON Schema.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ParamError(
            f"{parent}.{key}", f"Missing or invalid '{parent}.{key}': expected an integer."
        )
    return value


def _reject_extra(param: Mapping[str, Any], allowed: set[str], name: str) -> None:
    extra = sorted(set(param) - allowed)
    if extra:
        raise ParamError(f"{name}.{extra[0]}", f"Unrecognized parameter '{name}.{extra[0]}'.")


@dataclass(frozen=True)
class Chunk:
    """One window of a file's text; `start`/`end` are character offsets into that text."""

    index: int
    text: str
    start: int
    end: int
    tokens: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Chunk":
        return cls(**{field.name: data[field.name] for field in fields(cls)})


def chunk(text: str, strategy: ChunkingStrategy | None = None) -> list[Chunk]:
    """Split `text` into overlapping token windows (see the module docstring)."""
    strategy = strategy or ChunkingStrategy()
    size = strategy.max_chunk_size_tokens
    step = size - strategy.chunk_overlap_tokens
    spans = token_spans(text)
    chunks: list[Chunk] = []
    first = 0
    while first < len(spans):
        last = min(first + size, len(spans))
        start, end = spans[first][0], spans[last - 1][1]
        chunks.append(Chunk(len(chunks), text[start:end], start, end, last - first))
        if last == len(spans):
            break
        first += step
    return chunks
