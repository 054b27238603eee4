"""The file_search tool in the engine's runs, through the official OpenAI SDK (and once
through the gateway): an uploaded file's fact found, quoted and cited with a file_citation
annotation, the search recorded as a tool_calls run step, streamed, and vector stores that do
not exist refused."""

import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import DataPlane, IssueKey
from tests.openapi_schemas import validate, validated

POLL_MS = 50
FACT = "The lighthouse keeper of Port Ellery feeds the gulls at twenty to six every morning."
QUESTION = "When does the lighthouse keeper of Port Ellery feed the gulls?"
SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def knowledge(sdk: openai.OpenAI) -> tuple[str, str]:
    """A vector store holding the fact's file and an unrelated one: (store id, fact file id)."""
    store = sdk.vector_stores.create(name="Harbour notes")
    fact = sdk.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("harbour.txt", FACT.encode())
    )
    other = sdk.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("recipes.md", b"# Bread\nKnead the dough for ten minutes, then let it rise."),
    )
    assert fact.status == other.status == "completed"
    return store.id, fact.id


def librarian(sdk: openai.OpenAI, store_id: str, **file_search: Any) -> str:
    tool: Any = {"type": "file_search"}
    if file_search:
        tool["file_search"] = file_search
    return sdk.beta.assistants.create(
        model="gpt-4o",
        instructions="Answer from the files.",
        tools=[tool],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    ).id


def cited_files(text: dict[str, Any]) -> list[str]:
    """The files the annotations cite, each annotation checked against the text it marks."""
    cited = []
    for annotation in text["annotations"]:
        assert annotation["type"] == "file_citation"
        marked = text["value"][annotation["start_index"] : annotation["end_index"]]
        assert marked == annotation["text"] and marked.startswith("【0:")
        cited.append(annotation["file_citation"]["file_id"])
    return cited


def test_a_run_answers_from_the_file_and_cites_it(
    engine_client: openai.OpenAI, engine_http: httpx.Client
) -> None:
    store_id, file_id = knowledge(engine_client)
    assistant_id = librarian(engine_client, store_id)
    thread = engine_client.beta.threads.create(messages=[{"role": "user", "content": QUESTION}])
    run = engine_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, poll_interval_ms=POLL_MS
    )
    assert run.status == "completed", run.last_error

    listed = engine_http.get(f"/v1/threads/{thread.id}/messages", params={"run_id": run.id}).json()
    (reply,) = validated("ListMessagesResponse", listed)["data"]
    text = reply["content"][0]["text"]
    assert FACT in text["value"]
    assert file_id in cited_files(text)
    sdk_reply = engine_client.beta.threads.messages.retrieve(reply["id"], thread_id=thread.id)
    annotation = sdk_reply.content[0].text.annotations[0]  # type: ignore[union-attr]
    assert annotation.type == "file_citation"

    steps_path = f"/v1/threads/{thread.id}/runs/{run.id}/steps"
    steps = validated(
        "ListRunStepsResponse", engine_http.get(steps_path, params={"order": "asc"}).json()
    )
    search, message = steps["data"]
    assert search["type"] == "tool_calls" and search["status"] == "completed"
    assert message["type"] == "message_creation"
    (call,) = search["step_details"]["tool_calls"]
    assert call["type"] == "file_search" and call["id"].startswith("call_")
    assert call["file_search"]["ranking_options"] == {
        "ranker": "default_2024_08_21",
        "score_threshold": 0.0,
    }
    results = call["file_search"]["results"]
    assert results[0]["file_id"] == file_id and results[0]["file_name"] == "harbour.txt"
    assert 0 < results[0]["score"] <= 1
    # The results' content only when include[] asks for it, as on OpenAI.
    assert all("content" not in result for result in results)
    one_path = f"{steps_path}/{search['id']}"
    included = engine_http.get(one_path, params={"include[]": SEARCH_CONTENT}).json()
    first = validated("RunStepObject", included)["step_details"]["tool_calls"][0]
    assert first["file_search"]["results"][0]["content"] == [{"type": "text", "text": FACT}]
    sdk_steps = engine_client.beta.threads.runs.steps.list(
        run.id, thread_id=thread.id, include=[SEARCH_CONTENT], order="asc"
    ).data
    sdk_call = sdk_steps[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert sdk_call.file_search.results[0].content[0].text == FACT  # type: ignore[union-attr]

    wrong = engine_http.get(one_path, params={"include[]": "step_details.everything"})
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "include"


def test_tool_options_and_tool_choice(engine_client: openai.OpenAI) -> None:
    store_id, _ = knowledge(engine_client)
    assistant_id = librarian(
        engine_client, store_id, max_num_results=1, ranking_options={"score_threshold": 0.1}
    )
    thread = engine_client.beta.threads.create(
        messages=[{"role": "user", "content": "gulls dough knead lighthouse"}]
    )
    run = engine_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant_id,
        tool_choice={"type": "file_search"},
        poll_interval_ms=POLL_MS,
    )
    assert run.status == "completed", run.last_error
    search = engine_client.beta.threads.runs.steps.list(
        run.id, thread_id=thread.id, order="asc"
    ).data[0]
    (call,) = search.step_details.tool_calls  # type: ignore[union-attr]
    assert len(call.file_search.results or []) == 1  # type: ignore[union-attr]
    assert call.file_search.ranking_options.score_threshold == 0.1  # type: ignore[union-attr]

    # tool_choice "none" keeps the model off its tools: no search, no citation.
    engine_client.beta.threads.messages.create(thread.id, role="user", content=QUESTION)
    quiet = engine_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, tool_choice="none", poll_interval_ms=POLL_MS
    )
    steps = engine_client.beta.threads.runs.steps.list(quiet.id, thread_id=thread.id).data
    assert [step.type for step in steps] == ["message_creation"]
    (reply,) = engine_client.beta.threads.messages.list(thread.id, run_id=quiet.id).data
    assert reply.content[0].text.annotations == []  # type: ignore[union-attr]
    assert FACT not in reply.content[0].text.value  # type: ignore[union-attr]


class Recorder(openai.AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str]] = []
        self.deltas: list[str] = []

    def on_event(self, event: Any) -> None:
        kind = getattr(event.data, "type", "") if event.event.startswith("thread.run.step") else ""
        self.events.append((event.event, kind))
        if event.event.startswith("thread.run.step."):
            validate("RunStepObject", event.data.model_dump(mode="json", exclude_unset=True))

    def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.deltas.append(delta.value or "")


def test_a_streamed_run_shows_the_search_then_the_cited_answer(
    engine_client: openai.OpenAI,
) -> None:
    store_id, file_id = knowledge(engine_client)
    assistant_id = librarian(engine_client, store_id)
    thread = engine_client.beta.threads.create(messages=[{"role": "user", "content": QUESTION}])
    recorder = Recorder()
    with engine_client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant_id, event_handler=recorder
    ) as stream:
        stream.until_done()
        (streamed,) = stream.get_final_messages()
    assert recorder.events[:7] == [
        ("thread.run.created", ""),
        ("thread.run.queued", ""),
        ("thread.run.in_progress", ""),
        ("thread.run.step.created", "tool_calls"),
        ("thread.run.step.in_progress", "tool_calls"),
        ("thread.run.step.completed", "tool_calls"),
        ("thread.run.step.created", "message_creation"),
    ]
    assert recorder.events[-1] == ("thread.run.completed", "")
    (stored,) = engine_client.beta.threads.messages.list(thread.id, run_id=streamed.run_id).data
    stored_text = stored.content[0].text  # type: ignore[union-attr]
    assert "".join(recorder.deltas) == stored_text.value and FACT in stored_text.value
    streamed_text = streamed.content[0].text  # type: ignore[union-attr]
    assert [a.file_citation.file_id for a in streamed_text.annotations] == [  # type: ignore[union-attr]
        a.file_citation.file_id  # type: ignore[union-attr]
        for a in stored_text.annotations
    ]
    assert file_id in [a.file_citation.file_id for a in stored_text.annotations]  # type: ignore[union-attr]


def test_unknown_vector_stores_are_refused(
    engine_client: openai.OpenAI, engine_http: httpx.Client
) -> None:
    missing = {"file_search": {"vector_store_ids": ["vs_doesnotexist"]}}
    with pytest.raises(openai.BadRequestError) as refused:
        engine_client.beta.assistants.create(model="gpt-4o", tool_resources=missing)
    assert refused.value.body["param"] == "tool_resources.file_search.vector_store_ids"  # type: ignore[index]
    assert "No vector store found with id 'vs_doesnotexist'." in refused.value.message
    with pytest.raises(openai.BadRequestError):
        engine_client.beta.threads.create(tool_resources=missing)
    assistant = engine_client.beta.assistants.create(model="gpt-4o")
    response = engine_http.post(
        "/v1/threads/runs",
        json={"assistant_id": assistant.id, "thread": {"tool_resources": missing}},
    )
    assert response.status_code == 400
    error = validated("ErrorResponse", response.json())["error"]
    assert error["param"] == "thread.tool_resources.file_search.vector_store_ids"
    thread = engine_client.beta.threads.create()
    with pytest.raises(openai.BadRequestError):
        engine_client.beta.threads.update(thread.id, tool_resources=missing)
    assert engine_client.beta.threads.retrieve(thread.id).tool_resources.file_search is None  # type: ignore[union-attr]


def test_gateway_serves_file_search_on_the_engine(
    engine_gateway: DataPlane, issue_key: IssueKey
) -> None:
    _, issued = issue_key()
    with openai.OpenAI(base_url=engine_gateway.url, api_key=issued.secret, max_retries=0) as sdk:
        store_id, file_id = knowledge(sdk)
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": QUESTION}])
        run = sdk.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=librarian(sdk, store_id), poll_interval_ms=POLL_MS
        )
        assert run.status == "completed", run.last_error
        (reply,) = sdk.beta.threads.messages.list(thread.id, run_id=run.id).data
        text = reply.content[0].text  # type: ignore[union-attr]
        assert FACT in text.value
        assert file_id in [a.file_citation.file_id for a in text.annotations]  # type: ignore[union-attr]


def test_a_thread_makes_its_vector_store_from_file_ids(engine_client: openai.OpenAI) -> None:
    fact = engine_client.files.create(file=("harbour.txt", FACT.encode()), purpose="assistants")
    thread = engine_client.beta.threads.create(
        messages=[{"role": "user", "content": QUESTION}],
        tool_resources={
            "file_search": {
                "vector_stores": [{"file_ids": [fact.id], "metadata": {"made": "inline"}}]
            }
        },
    )
    (store_id,) = thread.tool_resources.file_search.vector_store_ids  # type: ignore[union-attr]
    store = engine_client.vector_stores.retrieve(store_id)
    assert store.metadata == {"made": "inline"} and store.file_counts.total == 1
    deadline = time.monotonic() + 10
    while engine_client.vector_stores.retrieve(store_id).file_counts.completed != 1:
        assert time.monotonic() < deadline, "the thread's vector store was never indexed"
        time.sleep(0.05)
    assistant = engine_client.beta.assistants.create(
        model="gpt-4o", tools=[{"type": "file_search"}]
    )
    run = engine_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=POLL_MS
    )
    (reply,) = engine_client.beta.threads.messages.list(thread.id, run_id=run.id).data
    text = reply.content[0].text  # type: ignore[union-attr]
    assert FACT in text.value
    assert [a.file_citation.file_id for a in text.annotations] == [fact.id]  # type: ignore[union-attr]

    with pytest.raises(openai.NotFoundError) as missing:
        engine_client.beta.threads.create(
            tool_resources={"file_search": {"vector_stores": [{"file_ids": ["file-nope"]}]}}
        )
    assert missing.value.body["param"] == "tool_resources.file_search.vector_stores[0].file_ids"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        engine_client.beta.threads.create(
            tool_resources={
                "file_search": {"vector_store_ids": [store_id], "vector_stores": [{"file_ids": []}]}
            }
        )
