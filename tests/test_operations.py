"""Each of the 44 operations in the spec (spec/), called with the OpenAI SDK through the
gateway, reaches the upstream once, on the right path, with the upstream's key and the
Assistants beta header, and without the client's own credentials or org/project headers."""

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from openai.types.beta.threads import Run

from tests.conftest import DataPlane, IssueKey, Upstream
from tests.openapi_schemas import spec_operations

# operationId -> (METHOD, /v1 path template), as the spec has them.
OPERATIONS = {name: (method, path) for name, (method, path, _) in spec_operations().items()}


@dataclass
class World:
    """Objects created through the gateway for the operations to act on."""

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
def sdk(dataplane: DataPlane, issue_key: IssueKey) -> Iterator[openai.OpenAI]:
    _, issued = issue_key()
    with openai.OpenAI(
        base_url=dataplane.url,
        api_key=issued.secret,
        organization="org-client-side",
        project="proj-client-side",
        max_retries=0,
    ) as client:
        yield client


@pytest.fixture(scope="module")
def world(sdk: openai.OpenAI) -> World:
    assistant = sdk.beta.assistants.create(model="gpt-4o", name="Ops", instructions="Be brief.")
    tool_assistant = sdk.beta.assistants.create(
        model="gpt-4o",
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {
                        "type": "object",
                        "properties": {"location": {"type": "string"}},
                        "required": ["location"],
                    },
                },
            }
        ],
    )
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Hello there"}])
    message = sdk.beta.threads.messages.create(thread.id, role="user", content="And again")
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    step = sdk.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    file = sdk.files.create(file=("notes.txt", b"Prism relays every byte.\n"), purpose="assistants")
    store = sdk.vector_stores.create(name="ops", file_ids=[file.id])
    batch = sdk.vector_stores.file_batches.create(store.id, file_ids=[file.id])
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


def _waiting_for_tools(c: openai.OpenAI, w: World) -> Run:
    """A run stopped at requires_action: one the upstream has not finished, so it can be
    cancelled."""
    thread = c.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])
    run = c.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=w.tool_assistant_id)
    assert run.status == "requires_action"
    return run


def _cancel_run(c: openai.OpenAI, w: World) -> None:
    run = _waiting_for_tools(c, w)
    c.beta.threads.runs.cancel(run.id, thread_id=run.thread_id)


def _submit_tool_outputs(c: openai.OpenAI, w: World) -> None:
    run = _waiting_for_tools(c, w)
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    c.beta.threads.runs.submit_tool_outputs(
        run.id, thread_id=run.thread_id, tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}]
    )


def _delete_thread(c: openai.OpenAI, w: World) -> None:
    c.beta.threads.delete(c.beta.threads.create().id)


def _delete_message(c: openai.OpenAI, w: World) -> None:
    message = c.beta.threads.messages.create(w.thread_id, role="user", content="bye")
    c.beta.threads.messages.delete(message.id, thread_id=w.thread_id)


def _new_file(c: openai.OpenAI) -> str:
    return c.files.create(file=("tmp.txt", b"temporary\n"), purpose="assistants").id


def _delete_vector_store_file(c: openai.OpenAI, w: World) -> None:
    file_id = _new_file(c)
    c.vector_stores.files.create(w.vector_store_id, file_id=file_id)
    c.vector_stores.files.delete(file_id, vector_store_id=w.vector_store_id)


def _cancel_batch(c: openai.OpenAI, w: World) -> None:
    batch = c.vector_stores.file_batches.create(w.vector_store_id, file_ids=[_new_file(c)])
    # The upstream may have finished the batch already and refuse; it was still asked.
    with contextlib.suppress(openai.BadRequestError):
        c.vector_stores.file_batches.cancel(batch.id, vector_store_id=w.vector_store_id)


# The call each operation's test makes. The last request the upstream sees is the
# operation under test; setup calls before it go through the gateway too.
CALLS: dict[str, Callable[[openai.OpenAI, World], Any]] = {
    "listAssistants": lambda c, w: c.beta.assistants.list(),
    "createAssistant": lambda c, w: c.beta.assistants.create(model="gpt-4o-mini"),
    "getAssistant": lambda c, w: c.beta.assistants.retrieve(w.assistant_id),
    "modifyAssistant": lambda c, w: c.beta.assistants.update(w.assistant_id, name="Renamed"),
    "deleteAssistant": lambda c, w: c.beta.assistants.delete(
        c.beta.assistants.create(model="gpt-4o").id
    ),
    "listFiles": lambda c, w: c.files.list(),
    "createFile": lambda c, w: _new_file(c),
    "deleteFile": lambda c, w: c.files.delete(_new_file(c)),
    "retrieveFile": lambda c, w: c.files.retrieve(w.file_id),
    "downloadFile": lambda c, w: c.files.content(w.file_id).read(),
    "createThread": lambda c, w: c.beta.threads.create(),
    "createThreadAndRun": lambda c, w: c.beta.threads.create_and_run(
        assistant_id=w.assistant_id, thread={"messages": [{"role": "user", "content": "Hi"}]}
    ),
    "getThread": lambda c, w: c.beta.threads.retrieve(w.thread_id),
    "modifyThread": lambda c, w: c.beta.threads.update(w.thread_id, metadata={"k": "v"}),
    "deleteThread": _delete_thread,
    "listMessages": lambda c, w: c.beta.threads.messages.list(w.thread_id),
    "createMessage": lambda c, w: c.beta.threads.messages.create(
        w.thread_id, role="user", content="One more"
    ),
    "getMessage": lambda c, w: c.beta.threads.messages.retrieve(
        w.message_id, thread_id=w.thread_id
    ),
    "modifyMessage": lambda c, w: c.beta.threads.messages.update(
        w.message_id, thread_id=w.thread_id, metadata={"k": "v"}
    ),
    "deleteMessage": _delete_message,
    "listRuns": lambda c, w: c.beta.threads.runs.list(w.thread_id),
    "createRun": lambda c, w: c.beta.threads.runs.create(
        c.beta.threads.create().id, assistant_id=w.assistant_id
    ),
    "getRun": lambda c, w: c.beta.threads.runs.retrieve(w.run_id, thread_id=w.thread_id),
    "modifyRun": lambda c, w: c.beta.threads.runs.update(
        w.run_id, thread_id=w.thread_id, metadata={"k": "v"}
    ),
    "cancelRun": _cancel_run,
    "listRunSteps": lambda c, w: c.beta.threads.runs.steps.list(w.run_id, thread_id=w.thread_id),
    "getRunStep": lambda c, w: c.beta.threads.runs.steps.retrieve(
        w.step_id, thread_id=w.thread_id, run_id=w.run_id
    ),
    "submitToolOuputsToRun": _submit_tool_outputs,
    "listVectorStores": lambda c, w: c.vector_stores.list(),
    "createVectorStore": lambda c, w: c.vector_stores.create(name="another"),
    "getVectorStore": lambda c, w: c.vector_stores.retrieve(w.vector_store_id),
    "modifyVectorStore": lambda c, w: c.vector_stores.update(w.vector_store_id, name="renamed"),
    "deleteVectorStore": lambda c, w: c.vector_stores.delete(c.vector_stores.create().id),
    "createVectorStoreFileBatch": lambda c, w: c.vector_stores.file_batches.create(
        w.vector_store_id, file_ids=[w.file_id]
    ),
    "getVectorStoreFileBatch": lambda c, w: c.vector_stores.file_batches.retrieve(
        w.batch_id, vector_store_id=w.vector_store_id
    ),
    "cancelVectorStoreFileBatch": _cancel_batch,
    "listFilesInVectorStoreBatch": lambda c, w: c.vector_stores.file_batches.list_files(
        w.batch_id, vector_store_id=w.vector_store_id
    ),
    "listVectorStoreFiles": lambda c, w: c.vector_stores.files.list(w.vector_store_id),
    "createVectorStoreFile": lambda c, w: c.vector_stores.files.create(
        w.vector_store_id, file_id=_new_file(c)
    ),
    "getVectorStoreFile": lambda c, w: c.vector_stores.files.retrieve(
        w.file_id, vector_store_id=w.vector_store_id
    ),
    "deleteVectorStoreFile": _delete_vector_store_file,
    "updateVectorStoreFileAttributes": lambda c, w: c.vector_stores.files.update(
        w.file_id, vector_store_id=w.vector_store_id, attributes={"team": "docs"}
    ),
    "retrieveVectorStoreFileContent": lambda c, w: c.vector_stores.files.content(
        w.file_id, vector_store_id=w.vector_store_id
    ),
    "searchVectorStore": lambda c, w: c.vector_stores.search(w.vector_store_id, query="bytes"),
}


def test_every_spec_operation_is_covered() -> None:
    assert len(OPERATIONS) == 44
    assert set(CALLS) == set(OPERATIONS)


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template)) + "$")


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_operation_reaches_the_upstream_with_its_credentials(
    operation: str, sdk: openai.OpenAI, world: World, shared_upstream: Upstream
) -> None:
    method, template = OPERATIONS[operation]
    shared_upstream.clear_requests()

    CALLS[operation](sdk, world)

    forwarded = shared_upstream.requests()
    assert forwarded, "nothing reached the upstream"
    last = forwarded[-1]
    assert (last["method"], _template_regex(template).match(last["path"]) is not None) == (
        method,
        True,
    ), f"{operation}: upstream saw {last['method']} {last['path']}, expected {method} {template}"
    for request in forwarded:
        headers = request["headers"]
        assert headers["authorization"] == f"Bearer {shared_upstream.api_key}"
        assert headers["openai-beta"] == "assistants=v2"
        assert "openai-organization" not in headers
        assert "openai-project" not in headers
        assert "sk-prism-" not in str(headers)
