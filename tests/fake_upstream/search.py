"""Lexical search over uploaded files: each line scores the share of the query's words it
contains. Deterministic, so a test knows which line file_search will quote."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .store import Store

# Only a file's head is searched: the benchmark uploads 512 MB files that nobody means
# to search, and reading them whole on every run would stall the fake.
INDEXED_BYTES = 1 << 20

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> set[str]:
    # Folding a trailing "s" lets "refund" find "refunds" without a real stemmer.
    return {
        word[:-1] if len(word) > 3 and word.endswith("s") else word
        for word in _WORD.findall(text.lower())
    }


def indexed_text(path: Path) -> str:
    with path.open("rb") as file:
        return file.read(INDEXED_BYTES).decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Hit:
    file_id: str
    filename: str
    score: float
    text: str


def rank(state: Store, file_ids: Iterable[str], query: str) -> list[Hit]:
    """Lines sharing a word with the query, best first; ties keep file and line order."""
    wanted = words(query)
    if not wanted:
        return []
    hits = []
    for file_id in file_ids:
        file = state.files.get(file_id)
        if file is None:
            continue
        for line in indexed_text(state.file_path(file_id)).splitlines():
            shared = len(wanted & words(line))
            if shared:
                score = round(shared / len(wanted), 4)
                hits.append(Hit(file_id, file["filename"], score, line.strip()))
    hits.sort(key=lambda hit: hit.score, reverse=True)
    return hits
