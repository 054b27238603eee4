"""A BM25 index over the chunks of many files, for vector-store search and file_search.

Terms: text is NFKC-normalised and case-folded, split into runs of letters and digits,
stripped of a small set of English stop words and of a plural "s" ("refunds" matches
"refund"). Query and chunks go through the same analysis.

Scores: Okapi BM25 (k1 = 1.2, b = 0.75, idf = ln(1 + (N - df + 0.5) / (df + 0.5)), which
is never negative). The API wants a score in 0..1, so a chunk's raw score is divided by
the highest score any chunk could reach for this query, the sum over query terms of
idf * (k1 + 1) (a term's contribution tends to that as its frequency grows). A score is
thus the share of the ideal match a chunk attains: independent of the other results, so
`score_threshold` means the same in every search, and 0 for a chunk sharing no term.
Ties are ordered by file id, then chunk position, so equal inputs give equal outputs.

Hybrid: chunks may carry embeddings (see embeddings.py). A search given the query's
embedding scores every chunk of the searched files as the mean of its BM25 share and its
cosine similarity to the query (a negative cosine counts as 0), so a chunk that says the
same thing in other words is found, and the score stays in 0..1. A chunk without an
embedding gets only its BM25 half.

State: `to_dict()` / `Index.from_dict()` round-trip through plain JSON-able data (the
chunks; term statistics are rebuilt on load), and files are added and removed one at a
time without rebuilding the rest.
"""

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.retrieval.chunking import Chunk
from engine.retrieval.errors import ParamError

K1 = 1.2
B = 0.75
DEFAULT_MAX_NUM_RESULTS = 20
MAX_NUM_RESULTS = 50
# The file_search tool's rankers and the search endpoint's: all rank with BM25 here.
RANKERS = frozenset({"auto", "default_2024_08_21", "default-2024-11-15", "none"})
_STATE_VERSION = 1

_WORD = re.compile(r"[^\W_]+")
_STOP_WORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "could", "did", "do",
        "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is",
        "it", "its", "me", "my", "of", "on", "or", "our", "so", "than", "that", "the",
        "their", "them", "then", "there", "these", "they", "this", "to", "was", "we",
        "were", "what", "when", "where", "which", "who", "whom", "why", "will", "with",
        "would", "you", "your",
    }
)  # fmt: skip


def terms(text: str) -> list[str]:
    """The index terms of `text`, in order."""
    words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    return [_stem(word) for word in words if word not in _STOP_WORDS]


def _stem(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@dataclass(frozen=True)
class SearchResult:
    file_id: str
    chunk: Chunk
    score: float


@dataclass
class _Entry:
    chunk: Chunk
    length: int
    frequencies: Counter[str]
    # Unit length, so cosine similarity is a dot product.
    vector: tuple[float, ...] | None


class Index:
    def __init__(self) -> None:
        self._files: dict[str, list[_Entry]] = {}
        self._postings: dict[str, set[tuple[str, int]]] = {}
        self._total_length = 0
        self._chunk_count = 0

    def file_ids(self) -> list[str]:
        return sorted(self._files)

    def chunk_count(self) -> int:
        return self._chunk_count

    def add_file(
        self,
        file_id: str,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float]] | None = None,
    ) -> None:
        """Index `chunks` as the file's content, replacing any it had; `vectors`, when
        given, are the chunks' embeddings, one per chunk."""
        if vectors is not None and len(vectors) != len(chunks):
            raise ValueError(f"{len(vectors)} embeddings given for {len(chunks)} chunks.")
        units = None if vectors is None else [_unit(vector) for vector in vectors]
        self._add(file_id, chunks, units)

    def _add(
        self, file_id: str, chunks: Sequence[Chunk], units: Sequence[tuple[float, ...]] | None
    ) -> None:
        self.remove_file(file_id)
        entries = []
        for position, item in enumerate(chunks):
            item_terms = terms(item.text)
            vector = None if units is None else units[position]
            entry = _Entry(item, len(item_terms), Counter(item_terms), vector)
            entries.append(entry)
            for term in entry.frequencies:
                self._postings.setdefault(term, set()).add((file_id, position))
            self._total_length += entry.length
        self._chunk_count += len(entries)
        self._files[file_id] = entries

    def remove_file(self, file_id: str) -> bool:
        """Drop the file's chunks; False when it was not indexed."""
        entries = self._files.pop(file_id, None)
        if entries is None:
            return False
        for position, entry in enumerate(entries):
            for term in entry.frequencies:
                postings = self._postings[term]
                postings.discard((file_id, position))
                if not postings:
                    del self._postings[term]
            self._total_length -= entry.length
        self._chunk_count -= len(entries)
        return True

    def search(
        self,
        query: str | Sequence[str],
        *,
        max_num_results: int = DEFAULT_MAX_NUM_RESULTS,
        ranker: str = "auto",
        score_threshold: float = 0.0,
        file_ids: Iterable[str] | None = None,
        query_vector: Sequence[float] | None = None,
    ) -> list[SearchResult]:
        """The best chunks for `query` (a string, or several whose terms are pooled), at
        most `max_num_results`, each scoring at least `score_threshold` and above 0, from
        the files in `file_ids` when given; hybrid when `query_vector` (the query's
        embedding) is given. Raises ParamError for out-of-range options."""
        query_terms = _query_terms(query)
        _check_options(max_num_results, ranker, score_threshold)
        if not self._chunk_count or not (query_terms or query_vector):
            return []
        allowed = None if file_ids is None else set(file_ids)
        weights = Counter(query_terms)
        idfs = {term: self._idf(term) for term in sorted(weights)}
        best_possible = sum(weights[term] * idfs[term] * (K1 + 1) for term in idfs)
        average_length = self._total_length / self._chunk_count
        unit_query = None if query_vector is None else _unit(query_vector)
        candidates: set[tuple[str, int]] = set()
        if unit_query is None:
            for term in idfs:
                candidates |= self._postings.get(term, set())
        else:
            # Meaning can match without a shared word: every chunk is a candidate.
            for file_id, entries in self._files.items():
                candidates.update((file_id, position) for position in range(len(entries)))
        results = []
        for file_id, position in candidates:
            if allowed is not None and file_id not in allowed:
                continue
            entry = self._files[file_id][position]
            raw = 0.0
            for term, idf in idfs.items():
                frequency = entry.frequencies.get(term, 0)
                if frequency:
                    norm = K1 * (1 - B + B * entry.length / average_length)
                    raw += weights[term] * idf * frequency * (K1 + 1) / (frequency + norm)
            score = min(1.0, raw / best_possible) if best_possible else 0.0
            if unit_query is not None:
                score = (score + _cosine(unit_query, entry.vector, file_id)) / 2
            if score > 0 and score >= score_threshold:
                results.append(SearchResult(file_id, entry.chunk, score))
        results.sort(key=lambda result: (-result.score, result.file_id, result.chunk.index))
        return results[:max_num_results]

    def _idf(self, term: str) -> float:
        frequency = len(self._postings.get(term, ()))
        return math.log(1 + (self._chunk_count - frequency + 0.5) / (frequency + 0.5))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": _STATE_VERSION,
            "files": {
                file_id: [_entry_state(entry) for entry in entries]
                for file_id, entries in sorted(self._files.items())
            },
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> "Index":
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"Unknown index state version {state.get('version')!r}.")
        index = cls()
        for file_id, items in state["files"].items():
            chunks = [Chunk.from_dict(item) for item in items]
            has_vectors = bool(items) and all("vector" in item for item in items)
            # Stored vectors are already unit length: normalising again could move their
            # last digits and so the scores.
            units = [tuple(item["vector"]) for item in items] if has_vectors else None
            index._add(file_id, chunks, units)
        return index


def _entry_state(entry: _Entry) -> dict[str, Any]:
    state = entry.chunk.to_dict()
    if entry.vector is not None:
        state["vector"] = list(entry.vector)
    return state


def _unit(vector: Sequence[float]) -> tuple[float, ...]:
    length = math.sqrt(sum(x * x for x in vector))
    if not vector or not length:
        raise ValueError("An embedding must have at least one non-zero component.")
    return tuple(x / length for x in vector)


def _cosine(query: tuple[float, ...], vector: tuple[float, ...] | None, file_id: str) -> float:
    if vector is None:
        return 0.0
    if len(vector) != len(query):
        raise ValueError(
            f"The query embedding has {len(query)} dimensions, file {file_id}'s "
            f"embeddings have {len(vector)}: were they made by another model?"
        )
    # Clamped: rounding can take the dot product of two unit vectors just past 1.
    return min(1.0, max(0.0, sum(a * b for a, b in zip(query, vector, strict=True))))


def _query_terms(query: str | Sequence[str]) -> list[str]:
    if isinstance(query, str):
        queries: list[object] = [query]
    elif isinstance(query, Sequence):
        queries = list(query)
    else:
        queries = []
    texts = [item for item in queries if isinstance(item, str) and item.strip()]
    if not queries or len(texts) != len(queries):
        raise ParamError("query", "Invalid 'query': expected a non-empty string or strings.")
    return [term for text in texts for term in terms(text)]


def _check_options(max_num_results: int, ranker: str, score_threshold: float) -> None:
    if (
        not isinstance(max_num_results, int)
        or isinstance(max_num_results, bool)
        or not 1 <= max_num_results <= MAX_NUM_RESULTS
    ):
        raise ParamError(
            "max_num_results",
            f"Invalid 'max_num_results': {max_num_results!r} is not an integer between 1 "
            f"and {MAX_NUM_RESULTS}.",
        )
    if ranker not in RANKERS:
        raise ParamError(
            "ranking_options.ranker",
            f"Invalid 'ranking_options.ranker': {ranker!r} is not one of "
            f"{', '.join(sorted(RANKERS))}.",
        )
    if (
        not isinstance(score_threshold, int | float)
        or isinstance(score_threshold, bool)
        or not 0 <= score_threshold <= 1
    ):
        raise ParamError(
            "ranking_options.score_threshold",
            f"Invalid 'ranking_options.score_threshold': {score_threshold!r} is not a number "
            "between 0 and 1.",
        )
