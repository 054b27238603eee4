"""The deterministic assistant: what a run answers, decided from its tools and its thread
alone, so a test can predict every word.

- function tools and no outputs submitted yet: call the first function, each required
  string parameter set to the last user message;
- outputs submitted: quote them ("The get_weather tool says: 22C and sunny");
- file_search with files in reach: quote the best-matching line and cite its file;
- otherwise: repeat the question back.
"""

import json
from dataclasses import dataclass

from . import search
from .store import JSON, Run, Store

# How many file_search results a run step lists, as OpenAI's default for gpt-4 models.
_MAX_SEARCH_RESULTS = 20


@dataclass(frozen=True)
class FunctionCall:
    name: str
    arguments: str


@dataclass(frozen=True)
class Reply:
    text: str
    annotations: list[JSON]
    # The file_search step's results; None when no search ran.
    search_results: list[JSON] | None = None


def message_text(message: JSON) -> str:
    return " ".join(part["text"]["value"] for part in message["content"] if part["type"] == "text")


def word_count(text: str | None) -> int:
    return len(text.split()) if text else 0


def _question(state: Store, thread_id: str) -> str:
    user_messages = [m for m in state.messages[thread_id].values() if m["role"] == "user"]
    return message_text(user_messages[-1]) if user_messages else ""


def function_call(state: Store, run: Run) -> FunctionCall | None:
    functions = [tool["function"] for tool in run.obj["tools"] if tool["type"] == "function"]
    if not functions or run.tool_outputs is not None:
        return None
    function = functions[0]
    # `parameters` is a free-form JSON schema, so every level is checked before use.
    schema = function.get("parameters") or {}
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    question = _question(state, run.obj["thread_id"])
    arguments = {
        name: question
        for name in required
        if isinstance(name, str)
        and isinstance(properties.get(name), dict)
        and properties[name].get("type") == "string"
    }
    return FunctionCall(function["name"], json.dumps(arguments))


def reply(state: Store, run: Run) -> Reply:
    if run.tool_outputs is not None:
        names = {call["id"]: call["function"]["name"] for call in run.tool_calls}
        quoted = [
            f"The {names[output['tool_call_id']]} tool says: {output['output']}"
            for output in run.tool_outputs
        ]
        return Reply(" ".join(quoted), [])
    question = _question(state, run.obj["thread_id"])
    uses_search = any(tool["type"] == "file_search" for tool in run.obj["tools"])
    if uses_search and (file_ids := _searchable_files(state, run)):
        return _cite(search.rank(state, file_ids, question))
    if not question:
        return Reply(f"Hello! This is {run.obj['model']}. What would you like to ask?", [])
    return Reply(f'You asked: "{question}". Answered by {run.obj["model"]}.', [])


def _cite(hits: list[search.Hit]) -> Reply:
    results = [
        {"file_id": hit.file_id, "file_name": hit.filename, "score": hit.score}
        for hit in hits[:_MAX_SEARCH_RESULTS]
    ]
    if not hits:
        return Reply("The attached files say nothing about that.", [], results)
    best = hits[0]
    marker = f"【0†{best.filename}】"
    text = f'According to {best.filename}: "{best.text}" {marker}'
    citation = {
        "type": "file_citation",
        "text": marker,
        "file_citation": {"file_id": best.file_id},
        "start_index": len(text) - len(marker),
        "end_index": len(text),
    }
    return Reply(text, [citation], results)


def _searchable_files(state: Store, run: Run) -> list[str]:
    """Files of the vector stores in the run's, the thread's and the assistant's
    tool_resources, in that order."""
    owners = [
        run.tool_resources,
        state.threads[run.obj["thread_id"]]["tool_resources"],
        state.assistants.get(run.obj["assistant_id"], {}).get("tool_resources") or {},
    ]
    store_ids = [
        store_id
        for resources in owners
        for store_id in resources.get("file_search", {}).get("vector_store_ids", [])
    ]
    file_ids = [
        file_id for store_id in store_ids for file_id in state.vector_store_files.get(store_id, {})
    ]
    return list(dict.fromkeys(file_ids))


def usage(state: Store, run: Run, reply_text: str) -> JSON:
    """Words stand in for tokens: the prompt is the instructions and the thread so far,
    the completion is the reply. A run whose metadata sets `cached_tokens` reports that many
    of its prompt tokens (at most all) read from the prompt cache."""
    prompt = word_count(run.obj["instructions"]) + sum(
        word_count(message_text(m)) for m in state.messages[run.obj["thread_id"]].values()
    )
    completion = word_count(reply_text)
    usage: JSON = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    cached = str(run.obj["metadata"].get("cached_tokens", ""))
    if cached.isdigit():
        usage["prompt_token_details"] = {"cached_tokens": min(int(cached), prompt)}
    return usage
