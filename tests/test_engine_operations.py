"""The engine behind the gateway answers each of the 44 operations of the spec (spec/), called
with the OpenAI SDK, with a body the spec's response schema for that operation accepts;
streamed runs send events the spec's AssistantStreamEvent accepts. A model routed to a
failing provider is answered by its fallback, and the run step names the one that answered."""

import asyncio
import json
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from openai._legacy_response import LegacyAPIResponse

from tests.conftest import DataPlane, IssueKey
from tests.fake_chat.server import Failure, FakeChat, Reply, refused_url
from tests.openapi_schemas import spec_operations, validate
from tools import stack

POLL_MS = 50
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
FILE_BYTES = b"Prism relays every byte to the engine.\n"


@dataclass(frozen=True)
class Operation:
    method: str
    # /v1 path template, e.g. /v1/threads/{thread_id}
    template: str
    # The 200 answer's JSON schema as the spec gives it: {"$ref": ...} or inline.
    schema: dict[str, Any]


OPERATIONS = {
    name: Operation(
        method, path, described["responses"]["200"]["content"]["application/json"]["schema"]
    )
    for name, (method, path, described) in spec_operations().items()
}


@dataclass
class World:
    """Objects made through the gateway for the operations to act on."""

    assistant_id: str
    tool_assistant_id: str
    thread_id: str
    message_id: str
    run_id: str
    step_id: str
    file_id: str
    vector_store_id: str
    batch_id: str


@pytest.fixture(scope="module")
def sdk(engine_gateway: DataPlane, issue_key: IssueKey) -> Iterator[openai.OpenAI]:
    """The SDK on a gateway whose upstream is the engine."""
    _, issued = issue_key()
    with openai.OpenAI(base_url=engine_gateway.url, api_key=issued.secret, max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def world(sdk: openai.OpenAI) -> World:
    assistant = sdk.beta.assistants.create(model="gpt-4o", name="Ops", instructions="Be brief.")
    tool_assistant = sdk.beta.assistants.create(model="gpt-4o", tools=[WEATHER_TOOL])
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Hello there"}])
    message = sdk.beta.threads.messages.create(thread.id, role="user", content="And again")
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=POLL_MS
    )
    assert run.status == "completed", run.last_error
    step = sdk.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    file = sdk.files.create(file=("notes.txt", FILE_BYTES), purpose="assistants")
    store = sdk.vector_stores.create(name="ops")
    indexed = sdk.vector_stores.files.create_and_poll(
        file_id=file.id, vector_store_id=store.id, poll_interval_ms=POLL_MS
    )
    assert indexed.status == "completed", indexed.last_error
    batch = sdk.vector_stores.file_batches.create_and_poll(
        store.id, file_ids=[_new_file(sdk)], poll_interval_ms=POLL_MS
    )
    return World(
        assistant.id,
        tool_assistant.id,
        thread.id,
        message.id,
        run.id,
        step.id,
        file.id,
        store.id,
        batch.id,
    )


def _new_file(c: openai.OpenAI) -> str:
    return c.files.create(file=("tmp.txt", b"temporary notes\n"), purpose="assistants").id


def _waiting_for_tools(c: openai.OpenAI, w: World) -> Any:
    """A run of the tool assistant in requires_action: it stays there until told."""
    run = c.beta.threads.create_and_run_poll(
        assistant_id=w.tool_assistant_id,
        thread={"messages": [{"role": "user", "content": "What is the weather forecast in Oslo?"}]},
        poll_interval_ms=POLL_MS,
    )
    assert run.status == "requires_action"
    return run


def _cancel_run(c: openai.OpenAI, w: World) -> LegacyAPIResponse[Any]:
    run = _waiting_for_tools(c, w)
    return c.beta.threads.runs.with_raw_response.cancel(run.id, thread_id=run.thread_id)


def _submit_tool_outputs(c: openai.OpenAI, w: World) -> LegacyAPIResponse[Any]:
    run = _waiting_for_tools(c, w)
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    return c.beta.threads.runs.with_raw_response.submit_tool_outputs(
        run.id, thread_id=run.thread_id, tool_outputs=[{"tool_call_id": call.id, "output": "sun"}]
    )


def _delete_message(c: openai.OpenAI, w: World) -> LegacyAPIResponse[Any]:
    message = c.beta.threads.messages.create(w.thread_id, role="user", content="bye")
    return c.beta.threads.messages.with_raw_response.delete(message.id, thread_id=w.thread_id)


def _delete_vector_store_file(c: openai.OpenAI, w: World) -> LegacyAPIResponse[Any]:
    file_id = _new_file(c)
    c.vector_stores.files.create(w.vector_store_id, file_id=file_id)
    return c.vector_stores.files.with_raw_response.delete(
        file_id, vector_store_id=w.vector_store_id
    )


def _cancel_batch(c: openai.OpenAI, w: World) -> LegacyAPIResponse[Any]:
    batch = c.vector_stores.file_batches.create(w.vector_store_id, file_ids=[_new_file(c)])
    return c.vector_stores.file_batches.with_raw_response.cancel(
        batch.id, vector_store_id=w.vector_store_id
    )


# The call of each operation, answering the raw response of the operation itself (setup
# calls before it go through the gateway too).
CALLS: dict[str, Callable[[openai.OpenAI, World], LegacyAPIResponse[Any]]] = {
    "listAssistants": lambda c, w: c.beta.assistants.with_raw_response.list(),
    "createAssistant": lambda c, w: c.beta.assistants.with_raw_response.create(
        model="gpt-4o-mini", tools=[WEATHER_TOOL, {"type": "file_search"}]
    ),
    "getAssistant": lambda c, w: c.beta.assistants.with_raw_response.retrieve(w.assistant_id),
    "modifyAssistant": lambda c, w: c.beta.assistants.with_raw_response.update(
        w.assistant_id, name="Renamed"
    ),
    "deleteAssistant": lambda c, w: c.beta.assistants.with_raw_response.delete(
        c.beta.assistants.create(model="gpt-4o").id
    ),
    "listFiles": lambda c, w: c.files.with_raw_response.list(),
    "createFile": lambda c, w: c.files.with_raw_response.create(
        file=("new.txt", b"new\n"), purpose="assistants"
    ),
    "deleteFile": lambda c, w: c.files.with_raw_response.delete(_new_file(c)),
    "retrieveFile": lambda c, w: c.files.with_raw_response.retrieve(w.file_id),
    "downloadFile": lambda c, w: c.files.with_raw_response.content(w.file_id),
    "createThread": lambda c, w: c.beta.threads.with_raw_response.create(
        messages=[{"role": "user", "content": "Hi"}], metadata={"k": "v"}
    ),
    "createThreadAndRun": lambda c, w: c.beta.threads.with_raw_response.create_and_run(
        assistant_id=w.assistant_id, thread={"messages": [{"role": "user", "content": "Hi"}]}
    ),
    "getThread": lambda c, w: c.beta.threads.with_raw_response.retrieve(w.thread_id),
    "modifyThread": lambda c, w: c.beta.threads.with_raw_response.update(
        w.thread_id, metadata={"k": "v"}
    ),
    "deleteThread": lambda c, w: c.beta.threads.with_raw_response.delete(
        c.beta.threads.create().id
    ),
    "listMessages": lambda c, w: c.beta.threads.messages.with_raw_response.list(w.thread_id),
    "createMessage": lambda c, w: c.beta.threads.messages.with_raw_response.create(
        w.thread_id, role="user", content="One more"
    ),
    "getMessage": lambda c, w: c.beta.threads.messages.with_raw_response.retrieve(
        w.message_id, thread_id=w.thread_id
    ),
    "modifyMessage": lambda c, w: c.beta.threads.messages.with_raw_response.update(
        w.message_id, thread_id=w.thread_id, metadata={"k": "v"}
    ),
    "deleteMessage": _delete_message,
    "listRuns": lambda c, w: c.beta.threads.runs.with_raw_response.list(w.thread_id),
    "createRun": lambda c, w: c.beta.threads.runs.with_raw_response.create(
        c.beta.threads.create(messages=[{"role": "user", "content": "Hi"}]).id,
        assistant_id=w.assistant_id,
    ),
    "getRun": lambda c, w: c.beta.threads.runs.with_raw_response.retrieve(
        w.run_id, thread_id=w.thread_id
    ),
    "modifyRun": lambda c, w: c.beta.threads.runs.with_raw_response.update(
        w.run_id, thread_id=w.thread_id, metadata={"k": "v"}
    ),
    "cancelRun": _cancel_run,
    "listRunSteps": lambda c, w: c.beta.threads.runs.steps.with_raw_response.list(
        w.run_id, thread_id=w.thread_id
    ),
    "getRunStep": lambda c, w: c.beta.threads.runs.steps.with_raw_response.retrieve(
        w.step_id, thread_id=w.thread_id, run_id=w.run_id
    ),
    "submitToolOuputsToRun": _submit_tool_outputs,
    "listVectorStores": lambda c, w: c.vector_stores.with_raw_response.list(),
    "createVectorStore": lambda c, w: c.vector_stores.with_raw_response.create(
        name="another", expires_after={"anchor": "last_active_at", "days": 2}
    ),
    "getVectorStore": lambda c, w: c.vector_stores.with_raw_response.retrieve(w.vector_store_id),
    "modifyVectorStore": lambda c, w: c.vector_stores.with_raw_response.update(
        w.vector_store_id, name="renamed"
    ),
    "deleteVectorStore": lambda c, w: c.vector_stores.with_raw_response.delete(
        c.vector_stores.create().id
    ),
    "createVectorStoreFileBatch": lambda c, w: (
        c.vector_stores.file_batches.with_raw_response.create(
            w.vector_store_id, file_ids=[_new_file(c)]
        )
    ),
    "getVectorStoreFileBatch": lambda c, w: c.vector_stores.file_batches.with_raw_response.retrieve(
        w.batch_id, vector_store_id=w.vector_store_id
    ),
    "cancelVectorStoreFileBatch": _cancel_batch,
    "listFilesInVectorStoreBatch": lambda c, w: (
        c.vector_stores.file_batches.with_raw_response.list_files(
            w.batch_id, vector_store_id=w.vector_store_id
        )
    ),
    "listVectorStoreFiles": lambda c, w: c.vector_stores.files.with_raw_response.list(
        w.vector_store_id
    ),
    "createVectorStoreFile": lambda c, w: c.vector_stores.files.with_raw_response.create(
        w.vector_store_id, file_id=_new_file(c), attributes={"team": "docs"}
    ),
    "getVectorStoreFile": lambda c, w: c.vector_stores.files.with_raw_response.retrieve(
        w.file_id, vector_store_id=w.vector_store_id
    ),
    "deleteVectorStoreFile": _delete_vector_store_file,
    "updateVectorStoreFileAttributes": lambda c, w: c.vector_stores.files.with_raw_response.update(
        w.file_id, vector_store_id=w.vector_store_id, attributes={"team": "docs"}
    ),
    "retrieveVectorStoreFileContent": lambda c, w: c.vector_stores.files.with_raw_response.content(
        w.file_id, vector_store_id=w.vector_store_id
    ),
    "searchVectorStore": lambda c, w: c.vector_stores.with_raw_response.search(
        w.vector_store_id, query="relays bytes"
    ),
}


def test_every_spec_operation_is_called() -> None:
    assert len(OPERATIONS) == 44
    assert set(CALLS) == set(OPERATIONS)


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template)) + "$")


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
def test_operation_answers_the_spec_schema(
    operation_id: str, sdk: openai.OpenAI, world: World
) -> None:
    operation = OPERATIONS[operation_id]

    response = CALLS[operation_id](sdk, world)

    # The call made is the operation under test, not only its setup.
    request = response.http_request
    assert request.method == operation.method
    assert _template_regex(operation.template).match(request.url.path), request.url.path
    assert response.status_code == 200, response.http_response.text
    if operation_id == "downloadFile":
        # The spec's schema is a string: the file's bytes, as uploaded.
        assert response.content == FILE_BYTES
        return
    assert response.headers["content-type"].startswith("application/json")
    schema_name = operation.schema["$ref"].rpartition("/")[2]
    validate(schema_name, response.http_response.json())


def _stream_events(lines: Iterator[str]) -> list[dict[str, Any]]:
    """The server-sent events as the spec's AssistantStreamEvent: {"event", "data"}."""
    events: list[dict[str, Any]] = []
    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
            events.append({"event": name, "data": data if data == "[DONE]" else json.loads(data)})
    return events


def _streamed(c: openai.OpenAI, w: World, operation_id: str) -> list[dict[str, Any]]:
    runs = c.beta.threads.runs.with_streaming_response
    if operation_id == "createRun":
        thread = c.beta.threads.create(messages=[{"role": "user", "content": "Stream to me"}])
        opened = runs.create(thread.id, assistant_id=w.assistant_id, stream=True)
    elif operation_id == "createThreadAndRun":
        opened = c.beta.threads.with_streaming_response.create_and_run(
            assistant_id=w.tool_assistant_id,
            thread={"messages": [{"role": "user", "content": "Weather forecast in Rome?"}]},
            stream=True,
        )
    else:
        run = _waiting_for_tools(c, w)
        call = run.required_action.submit_tool_outputs.tool_calls[0]
        opened = runs.submit_tool_outputs(
            run.id,
            thread_id=run.thread_id,
            tool_outputs=[{"tool_call_id": call.id, "output": "rainy"}],
            stream=True,
        )
    with opened as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return _stream_events(response.iter_lines())


@pytest.mark.parametrize(
    ("operation_id", "ends"),
    [
        ("createRun", "thread.run.completed"),
        ("createThreadAndRun", "thread.run.requires_action"),
        ("submitToolOuputsToRun", "thread.run.completed"),
    ],
)
def test_streamed_operation_sends_the_spec_events(
    operation_id: str, ends: str, sdk: openai.OpenAI, world: World
) -> None:
    events = _streamed(sdk, world, operation_id)

    for event in events:
        validate("AssistantStreamEvent", event)
    names = [event["event"] for event in events]
    assert names[-2:] == [ends, "done"], names
    if operation_id == "createThreadAndRun":
        assert names[0] == "thread.created"
        return
    # The deltas spell the message the run completed with.
    deltas = "".join(
        part["text"]["value"]
        for event in events
        if event["event"] == "thread.message.delta"
        for part in event["data"]["delta"]["content"]
    )
    (completed,) = [e["data"] for e in events if e["event"] == "thread.message.completed"]
    assert deltas and deltas == completed["content"][0]["text"]["value"]


# Failover: a private engine whose model is routed to a failing provider, with a fallback.


@pytest.mark.parametrize(
    ("case", "database"),
    [("503", 13), ("429", 14), ("refused", 15)],
)
def test_a_failing_provider_falls_over_to_the_next(
    case: str, database: int, redis_url: str, tmp_path: Path, logs: Path
) -> None:
    async def main() -> None:
        primary, backup = FakeChat(), FakeChat()
        primary_url = refused_url() if case == "refused" else await primary.start()
        if case != "refused":
            primary.script.append(Failure(int(case), f"the provider is out ({case})"))
        backup_url = await backup.start()
        backup.script.append(Reply(text=["Answered", " by", " the backup."]))
        models = tmp_path / "models.toml"
        models.write_text(
            f'[models."gpt-4o"]\nbase_url = "{primary_url}"\nfallbacks = ["backup"]\n\n'
            f'[models.backup]\nbase_url = "{backup_url}"\n'
        )
        listen = f"127.0.0.1:{stack.free_port()}"
        settings = {
            "PRISM_ENGINE_LISTEN": listen,
            "PRISM_ENGINE_API_KEY": "sk-engine-" + secrets.token_urlsafe(16),
            "PRISM_ENGINE_REDIS_URL": redis_url.rpartition("/")[0] + f"/{database}",
            "PRISM_ENGINE_DATA_DIR": str(tmp_path / "engine-data"),
            "PRISM_ENGINE_MODELS": str(models),
        }
        process = await asyncio.to_thread(
            stack.start_engine, settings, logs, f"engine-failover-{case}"
        )
        try:
            async with openai.AsyncOpenAI(
                base_url=f"http://{listen}/v1",
                api_key=settings["PRISM_ENGINE_API_KEY"],
                max_retries=0,
            ) as sdk:
                tutor = await sdk.beta.assistants.create(model="gpt-4o")
                run = await sdk.beta.threads.create_and_run_poll(
                    assistant_id=tutor.id,
                    thread={"messages": [{"role": "user", "content": "Anyone there?"}]},
                    poll_interval_ms=POLL_MS,
                )
                assert run.status == "completed", run.last_error
                (reply,) = (await sdk.beta.threads.messages.list(run.thread_id, run_id=run.id)).data
                assert reply.content[0].text.value == "Answered by the backup."  # type: ignore[union-attr]
                (step,) = (
                    await sdk.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id)
                ).data
                assert step.metadata == {
                    "provider": "backup",
                    "provider_host": backup_url.split("://")[1].split("/")[0],
                }
        finally:
            await asyncio.to_thread(process.stop)
            await primary.close()
            await backup.close()
        # The primary was asked first (unless nothing listened), the backup once.
        assert len(primary.received) == (0 if case == "refused" else 1)
        assert [r.body["model"] for r in backup.received] == ["gpt-4o"]

    asyncio.run(main())
