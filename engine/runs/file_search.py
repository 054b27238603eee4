"""The file_search tool in a run: whether a turn searches, the search itself over the vector
stores of the assistant's and the thread's tool_resources, the `tool_calls` step that records
it (the spec's RunStepDetailsToolCallsFileSearchObject), and the reply's citation markers
turned into `file_citation` annotations."""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..ids import new_id
from ..models.types import RetrievedChunk
from ..retrieval.bm25 import DEFAULT_MAX_NUM_RESULTS
from ..store import JSON
from ..vector_stores import VectorStores
from . import lifecycle

# `【0:3†notes.txt】`: the marker the prompt asks models to cite with (models.types).
_MARKER = re.compile(r"【0:(\d+)†[^】]*】")


@dataclass(frozen=True)
class Search:
    """One file_search call of a run: its step (completed) and the chunks found, best
    first, that the model answers from."""

    step: JSON
    chunks: tuple[RetrievedChunk, ...]


def tool(run: JSON) -> JSON | None:
    """The run's file_search tool, unless tool_choice rules it out for this run."""
    choice = run["tool_choice"]
    if choice == "none" or (isinstance(choice, dict) and choice.get("type") == "function"):
        return None
    return next((t for t in run["tools"] if t["type"] == "file_search"), None)


def store_ids(assistant: JSON | None, thread: JSON | None) -> list[str]:
    """The thread's vector stores, then the assistant's, each once."""
    ids = [
        store_id
        for owner in (thread, assistant)
        if owner is not None
        for store_id in ((owner.get("tool_resources") or {}).get("file_search") or {}).get(
            "vector_store_ids", []
        )
    ]
    return list(dict.fromkeys(ids))


async def search(
    vector_stores: VectorStores, run: JSON, file_search: JSON, ids: Sequence[str], query: str
) -> Search:
    options = file_search.get("file_search") or {}
    ranking = options.get("ranking_options") or {
        "ranker": "default_2024_08_21",
        "score_threshold": 0.0,
    }
    hits = await vector_stores.search(
        ids,
        query,
        max_num_results=options.get("max_num_results", DEFAULT_MAX_NUM_RESULTS),
        ranker=ranking["ranker"],
        score_threshold=ranking["score_threshold"],
    )
    results = [
        {
            "file_id": hit.file_id,
            "file_name": hit.filename,
            "score": hit.score,
            "content": [{"type": "text", "text": hit.text}],
        }
        for hit in hits
    ]
    call = {
        "id": new_id("call_"),
        "type": "file_search",
        "file_search": {"ranking_options": dict(ranking), "results": results},
    }
    step = lifecycle.file_search_step(run, call)
    chunks = tuple(RetrievedChunk(h.file_id, h.filename, h.text, h.score) for h in hits)
    return Search(step, chunks)


def chunks_json(chunks: Sequence[RetrievedChunk]) -> list[JSON]:
    """The chunks as the run's state keeps them, so a run resumed after requires_action
    answers from the same search."""
    return [
        {"file_id": c.file_id, "filename": c.filename, "text": c.text, "score": c.score}
        for c in chunks
    ]


def chunks_from_json(items: Sequence[JSON]) -> tuple[RetrievedChunk, ...]:
    return tuple(RetrievedChunk(i["file_id"], i["filename"], i["text"], i["score"]) for i in items)


def citations(text: str, chunks: Sequence[RetrievedChunk]) -> list[JSON]:
    """A file_citation annotation per marker in the reply that names a retrieved chunk;
    a marker the model made up (an index past the chunks) is left as text."""
    annotations = []
    for match in _MARKER.finditer(text):
        index = int(match.group(1))
        if index >= len(chunks):
            continue
        annotations.append(
            {
                "type": "file_citation",
                "text": match.group(0),
                "start_index": match.start(),
                "end_index": match.end(),
                "file_citation": {"file_id": chunks[index].file_id},
            }
        )
    return annotations


def public_step(step: JSON, *, with_content: bool) -> JSON:
    """The step as answered: a file_search result's `content` only when the request's
    `include[]` asks for it, as on OpenAI."""
    details = step["step_details"]
    if with_content or details.get("type") != "tool_calls":
        return step
    calls = []
    for call in details["tool_calls"]:
        if call["type"] == "file_search" and "results" in call["file_search"]:
            results = [
                {k: v for k, v in result.items() if k != "content"}
                for result in call["file_search"]["results"]
            ]
            call = {**call, "file_search": {**call["file_search"], "results": results}}
        calls.append(call)
    return {**step, "step_details": {**details, "tool_calls": calls}}
