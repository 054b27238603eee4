"""Vector stores made inline (`tool_resources.file_search.vector_stores`) with an assistant,
a thread, or a thread and run, streamed or not, are their creator's from the response that
made them: it can read them, lists them, and is charged their storage; other orgs get the
404 of a missing store."""

from collections.abc import Callable, Sequence

import openai
import pytest

from tests.conftest import AdminClient, ControlPlane, IssueKey, Resize, Sdk, wait_for
from tests.test_storage_fees import small_file, storage_micros, storage_rows


def inline(file_ids: Sequence[str] = ()) -> dict[str, object]:
    return {"file_search": {"vector_stores": [{"file_ids": list(file_ids)}]}}


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
    """A thread and run whose thread names an existing store while the run makes one inline
    (file_search takes one store, so one field cannot do both): the new thread holds the named
    store, which stays its owner's (and would not be deleted were the record to fail)."""
    _, issued = issue_key()
    _, stranger = issue_key()
    client = sdk(issued.secret)
    existing = client.vector_stores.create(name="existing")
    assistant = client.beta.assistants.create(model="gpt-4o")

    run = client.beta.threads.create_and_run(
        assistant_id=assistant.id,
        thread={"tool_resources": {"file_search": {"vector_store_ids": [existing.id]}}},
        tool_resources=inline(),
    )
    thread = client.beta.threads.retrieve(run.thread_id)
    assert thread.tool_resources.file_search.vector_store_ids == [existing.id]
    assert client.vector_stores.retrieve(existing.id).id == existing.id
    with pytest.raises(openai.NotFoundError):
        sdk(stranger.secret).vector_stores.retrieve(existing.id)


def test_the_storage_of_a_store_made_inline_is_charged(
    issue_key: IssueKey,
    sdk: Sdk,
    admin: AdminClient,
    resize: Resize,
    start_sweeping: Callable[[], ControlPlane],
) -> None:
    org, issued = issue_key()
    client = sdk(issued.secret)
    file_id = small_file(client)
    thread = client.beta.threads.create(tool_resources=inline([file_id]))
    resize(thread.tool_resources.file_search.vector_store_ids[0], file_id, 2_500_000_000)

    start_sweeping()
    wait_for(lambda: storage_rows(admin, org.id), "the inline store's storage was never charged")

    (row,) = storage_rows(admin, org.id)
    assert round(row.cost_usd * 1_000_000) == storage_micros(2_500_000_000, "0.10")
