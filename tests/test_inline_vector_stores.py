"""Vector stores made inline (`tool_resources.file_search.vector_stores`) with an assistant,
a thread, or a thread and run, streamed or not, are their creator's from the response that
made them: it can read them, lists them, and is charged their storage; other orgs get the
404 of a missing store."""

from collections.abc import Callable

import openai
import pytest

from tests.conftest import AdminClient, ControlPlane, IssueKey, Sdk
from tests.test_storage_fees import storage_micros, storage_rows, wait_for


def inline(metadata: dict[str, str] | None = None) -> dict[str, object]:
    store: dict[str, object] = {"file_ids": []}
    if metadata:
        store["metadata"] = metadata
    return {"file_search": {"vector_stores": [store]}}


def _assistant(client: openai.OpenAI) -> str:
    assistant = client.beta.assistants.create(model="gpt-4o", tool_resources=inline())
    return assistant.tool_resources.file_search.vector_store_ids[0]


def _modified_assistant(client: openai.OpenAI) -> str:
    assistant = client.beta.assistants.create(model="gpt-4o")
    modified = client.beta.assistants.update(assistant.id, tool_resources=inline())
    return modified.tool_resources.file_search.vector_store_ids[0]


def _thread(client: openai.OpenAI) -> str:
    thread = client.beta.threads.create(tool_resources=inline())
    return thread.tool_resources.file_search.vector_store_ids[0]


def _modified_thread(client: openai.OpenAI) -> str:
    thread = client.beta.threads.create()
    modified = client.beta.threads.update(thread.id, tool_resources=inline())
    return modified.tool_resources.file_search.vector_store_ids[0]


def _thread_and_run(client: openai.OpenAI) -> str:
    assistant = client.beta.assistants.create(model="gpt-4o")
    run = client.beta.threads.create_and_run(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Hi"}], "tool_resources": inline()},
    )
    thread = client.beta.threads.retrieve(run.thread_id)
    return thread.tool_resources.file_search.vector_store_ids[0]


def _streamed_thread_and_run(client: openai.OpenAI) -> str:
    assistant = client.beta.assistants.create(model="gpt-4o")
    stream = client.beta.threads.create_and_run(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Hi"}], "tool_resources": inline()},
        stream=True,
    )
    with stream:
        for event in stream:
            if event.event == "thread.created":
                # The store is usable while the stream goes on.
                store_id = event.data.tool_resources.file_search.vector_store_ids[0]
                assert client.vector_stores.retrieve(store_id).id == store_id
    return store_id


WAYS = {
    "assistant": _assistant,
    "modified-assistant": _modified_assistant,
    "thread": _thread,
    "modified-thread": _modified_thread,
    "thread-and-run": _thread_and_run,
    "streamed-thread-and-run": _streamed_thread_and_run,
}


@pytest.mark.parametrize("way", WAYS)
def test_a_store_made_inline_is_its_creators(way: str, issue_key: IssueKey, sdk: Sdk) -> None:
    _, creator = issue_key()
    _, stranger = issue_key()
    client = sdk(creator.secret)

    store_id = WAYS[way](client)

    assert client.vector_stores.retrieve(store_id).id == store_id
    assert store_id in [store.id for store in client.vector_stores.list()]
    with pytest.raises(openai.NotFoundError):
        sdk(stranger.secret).vector_stores.retrieve(store_id)
    assert store_id not in [store.id for store in sdk(stranger.secret).vector_stores.list()]


def test_a_store_named_by_id_is_not_taken_for_a_new_one(issue_key: IssueKey, sdk: Sdk) -> None:
    """Modifying an assistant to hold an existing store and a new one: the existing one stays
    its owner's (and would not be deleted were the record to fail)."""
    _, issued = issue_key()
    client = sdk(issued.secret)
    existing = client.vector_stores.create(name="existing")
    assistant = client.beta.assistants.create(model="gpt-4o")

    resources = {"file_search": {"vector_store_ids": [existing.id], "vector_stores": [{}]}}
    modified = client.beta.assistants.update(assistant.id, tool_resources=resources)
    held = modified.tool_resources.file_search.vector_store_ids
    assert existing.id in held and len(held) == 2
    for store_id in held:
        assert client.vector_stores.retrieve(store_id).id == store_id


def test_the_storage_of_a_store_made_inline_is_charged(
    issue_key: IssueKey,
    sdk: Sdk,
    admin: AdminClient,
    start_sweeping: Callable[[], ControlPlane],
) -> None:
    org, issued = issue_key()
    client = sdk(issued.secret)
    client.beta.threads.create(tool_resources=inline({"usage_bytes": "2500000000"}))

    start_sweeping()
    wait_for(lambda: storage_rows(admin, org.id), "the inline store's storage was never charged")

    (row,) = storage_rows(admin, org.id)
    assert round(row.cost_usd * 1_000_000) == storage_micros(2_500_000_000, "0.10")
