"""Tenant isolation, end to end through the gateway with the OpenAI SDK.

Two orgs share one upstream account. The gateway records which org owns every object
created through it, and a request naming an object its org does not own, in the path or
anywhere in the JSON body, gets exactly the refusal the upstream gives for an object that
does not exist (a 404; a 400 for a vector store a body names), and reaches nothing: another
org's objects do not exist for this one, so a caller cannot tell "exists elsewhere" from
"does not exist".

Every test starts from fresh objects: `a` and `b` each create one of everything (see
`create_everything`). The attempts are tables of SDK calls, each naming the objects of a
`target` (another org's, made-up, or the caller's own) and using the caller's `own` objects
wherever the request needs some of its own (B's thread to run A's assistant on). The refusal
a refused attempt must get is asked of the upstream itself: the same call, sent to the
upstream directly with made-up ids in place of the target's.
"""

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Any

import openai
import pytest

from prism.v1 import admin_pb2
from tests.conftest import AdminClient, DataPlane, IssueKey, Upstream

MODEL = "gpt-4o"
FUNCTION_TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}
# Bounds a wait the gateway could make endless (a stream the upstream cut); never reached.
PATIENCE_SECONDS = 20


@dataclass(frozen=True)
class Objects:
    """One object of every kind an org can name, by id."""

    assistant: str
    file: str
    # Holds `file`, attached once on its own and once more by `batch`.
    vector_store: str
    batch: str
    # A thread with a user message and a completed run, which has steps.
    thread: str
    message: str
    run: str
    step: str
    # A second thread, whose run waits for the output of `tool_call`.
    waiting_thread: str
    waiting_run: str
    tool_call: str

    def made_up(self) -> "Objects":
        """Ids of the same kinds that nobody, the upstream included, ever saw."""
        return replace(self, **{f.name: _made_up(getattr(self, f.name)) for f in fields(self)})

    def translate(self, text: str, to: "Objects") -> str:
        """`text` with each of these ids replaced by the same field's id in `to`."""
        for f in fields(self):
            text = text.replace(getattr(self, f.name), getattr(to, f.name))
        return text


def _made_up(object_id: str) -> str:
    prefix = re.match(r"[a-z]+[-_]", object_id)
    assert prefix, object_id
    return prefix[0] + secrets.token_hex(12)


def create_everything(sdk: openai.OpenAI) -> Objects:
    assistant = sdk.beta.assistants.create(model=MODEL, name="isolation")
    file = sdk.files.create(file=("notes.txt", b"Isolation notes."), purpose="assistants")
    vector_store = sdk.vector_stores.create(name="isolation", file_ids=[file.id])
    batch = sdk.vector_stores.file_batches.create(vector_store.id, file_ids=[file.id])
    thread = sdk.beta.threads.create()
    message = sdk.beta.threads.messages.create(thread.id, role="user", content="Hello")
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    step = sdk.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    waiting_thread = sdk.beta.threads.create(
        messages=[{"role": "user", "content": "Run a lookup for me"}]
    )
    waiting_run = sdk.beta.threads.runs.create_and_poll(
        thread_id=waiting_thread.id,
        assistant_id=assistant.id,
        tools=[FUNCTION_TOOL],  # type: ignore[list-item]
    )
    assert waiting_run.status == "requires_action"
    assert waiting_run.required_action is not None
    return Objects(
        tool_call=waiting_run.required_action.submit_tool_outputs.tool_calls[0].id,
        assistant=assistant.id,
        file=file.id,
        vector_store=vector_store.id,
        batch=batch.id,
        thread=thread.id,
        message=message.id,
        run=run.id,
        step=step.id,
        waiting_thread=waiting_thread.id,
        waiting_run=waiting_run.id,
    )


@dataclass
class Tenant:
    org_id: str
    sdk: openai.OpenAI
    objects: Objects


def _org(dataplane: DataPlane, issue_key: IssueKey) -> Iterator[tuple[str, openai.OpenAI]]:
    org, issued = issue_key()
    with openai.OpenAI(base_url=dataplane.url, api_key=issued.secret, max_retries=0) as sdk:
        yield org.id, sdk


@pytest.fixture(scope="module")
def org_a(dataplane: DataPlane, issue_key: IssueKey) -> Iterator[tuple[str, openai.OpenAI]]:
    yield from _org(dataplane, issue_key)


@pytest.fixture(scope="module")
def org_b(dataplane: DataPlane, issue_key: IssueKey) -> Iterator[tuple[str, openai.OpenAI]]:
    yield from _org(dataplane, issue_key)


@pytest.fixture
def a(org_a: tuple[str, openai.OpenAI]) -> Tenant:
    org_id, sdk = org_a
    return Tenant(org_id, sdk, create_everything(sdk))


@pytest.fixture
def b(org_b: tuple[str, openai.OpenAI]) -> Tenant:
    org_id, sdk = org_b
    return Tenant(org_id, sdk, create_everything(sdk))


@pytest.fixture(scope="module")
def upstream_sdk(shared_upstream: Upstream) -> Iterator[openai.OpenAI]:
    """The shared upstream account itself, without the gateway: the reference for the 404s."""
    with openai.OpenAI(
        base_url=shared_upstream.url, api_key=shared_upstream.api_key, max_retries=0
    ) as sdk:
        yield sdk


# An SDK call naming the objects of `target`, using the caller's `own` where it needs its own.
Call = Callable[[openai.OpenAI, Objects, Objects], Any]


@dataclass(frozen=True)
class Attempt:
    name: str
    call: Call
    # The `param` of the upstream's refusal of a missing object: files and vector stores are
    # named by their place in the body, a file by `id` in the path; no other kind is named.
    param: str | None = None
    # The upstream's status for a missing object: a 400 for a vector store a body names, as
    # for any tool resource that is no store.
    status: int = 404

    def __str__(self) -> str:
        return self.name


# Requests whose path names the target's object; the body names only the caller's own.
PATH_ATTEMPTS = [
    # Assistants
    Attempt("assistant retrieve", lambda sdk, t, own: sdk.beta.assistants.retrieve(t.assistant)),
    Attempt(
        "assistant update",
        lambda sdk, t, own: sdk.beta.assistants.update(t.assistant, name="taken"),
    ),
    Attempt("assistant delete", lambda sdk, t, own: sdk.beta.assistants.delete(t.assistant)),
    # Threads
    Attempt("thread retrieve", lambda sdk, t, own: sdk.beta.threads.retrieve(t.thread)),
    Attempt(
        "thread update",
        lambda sdk, t, own: sdk.beta.threads.update(t.thread, metadata={"taken": "yes"}),
    ),
    Attempt("thread delete", lambda sdk, t, own: sdk.beta.threads.delete(t.thread)),
    # Messages
    Attempt("messages list", lambda sdk, t, own: sdk.beta.threads.messages.list(t.thread)),
    Attempt(
        "message create",
        lambda sdk, t, own: sdk.beta.threads.messages.create(t.thread, role="user", content="hi"),
    ),
    Attempt(
        "message retrieve",
        lambda sdk, t, own: sdk.beta.threads.messages.retrieve(t.message, thread_id=t.thread),
    ),
    Attempt(
        "message update",
        lambda sdk, t, own: sdk.beta.threads.messages.update(
            t.message, thread_id=t.thread, metadata={"taken": "yes"}
        ),
    ),
    Attempt(
        "message delete",
        lambda sdk, t, own: sdk.beta.threads.messages.delete(t.message, thread_id=t.thread),
    ),
    # Runs
    Attempt(
        "run create",
        lambda sdk, t, own: sdk.beta.threads.runs.create(t.thread, assistant_id=own.assistant),
    ),
    Attempt(
        "run create streamed",
        lambda sdk, t, own: sdk.beta.threads.runs.create(
            t.thread, assistant_id=own.assistant, stream=True
        ),
    ),
    Attempt("runs list", lambda sdk, t, own: sdk.beta.threads.runs.list(t.thread)),
    Attempt(
        "run retrieve",
        lambda sdk, t, own: sdk.beta.threads.runs.retrieve(t.run, thread_id=t.thread),
    ),
    Attempt(
        "run update",
        lambda sdk, t, own: sdk.beta.threads.runs.update(
            t.run, thread_id=t.thread, metadata={"taken": "yes"}
        ),
    ),
    Attempt(
        "run cancel",
        lambda sdk, t, own: sdk.beta.threads.runs.cancel(t.waiting_run, thread_id=t.waiting_thread),
    ),
    Attempt(
        "run submit_tool_outputs",
        lambda sdk, t, own: sdk.beta.threads.runs.submit_tool_outputs(
            t.waiting_run,
            thread_id=t.waiting_thread,
            tool_outputs=[{"tool_call_id": t.tool_call, "output": "42"}],
        ),
    ),
    Attempt(
        "run steps list",
        lambda sdk, t, own: sdk.beta.threads.runs.steps.list(t.run, thread_id=t.thread),
    ),
    Attempt(
        "run step retrieve",
        lambda sdk, t, own: sdk.beta.threads.runs.steps.retrieve(
            t.step, thread_id=t.thread, run_id=t.run
        ),
    ),
    # Files
    Attempt("file retrieve", lambda sdk, t, own: sdk.files.retrieve(t.file), param="id"),
    Attempt("file content", lambda sdk, t, own: sdk.files.content(t.file), param="id"),
    Attempt("file delete", lambda sdk, t, own: sdk.files.delete(t.file), param="id"),
    # Vector stores
    Attempt(
        "vector store retrieve", lambda sdk, t, own: sdk.vector_stores.retrieve(t.vector_store)
    ),
    Attempt(
        "vector store update",
        lambda sdk, t, own: sdk.vector_stores.update(t.vector_store, name="taken"),
    ),
    Attempt("vector store delete", lambda sdk, t, own: sdk.vector_stores.delete(t.vector_store)),
    Attempt(
        "vector store search",
        lambda sdk, t, own: sdk.vector_stores.search(t.vector_store, query="notes"),
    ),
    Attempt(
        "vector store file create",
        lambda sdk, t, own: sdk.vector_stores.files.create(t.vector_store, file_id=own.file),
    ),
    Attempt(
        "vector store files list",
        lambda sdk, t, own: sdk.vector_stores.files.list(t.vector_store),
    ),
    Attempt(
        "vector store file retrieve",
        lambda sdk, t, own: sdk.vector_stores.files.retrieve(
            t.file, vector_store_id=t.vector_store
        ),
    ),
    Attempt(
        "vector store file update",
        lambda sdk, t, own: sdk.vector_stores.files.update(
            t.file, vector_store_id=t.vector_store, attributes={"taken": True}
        ),
    ),
    Attempt(
        "vector store file content",
        lambda sdk, t, own: sdk.vector_stores.files.content(t.file, vector_store_id=t.vector_store),
    ),
    Attempt(
        "vector store file delete",
        lambda sdk, t, own: sdk.vector_stores.files.delete(t.file, vector_store_id=t.vector_store),
    ),
    Attempt(
        "file batch create",
        lambda sdk, t, own: sdk.vector_stores.file_batches.create(
            t.vector_store, file_ids=[own.file]
        ),
    ),
    Attempt(
        "file batch retrieve",
        lambda sdk, t, own: sdk.vector_stores.file_batches.retrieve(
            t.batch, vector_store_id=t.vector_store
        ),
    ),
    Attempt(
        "file batch cancel",
        lambda sdk, t, own: sdk.vector_stores.file_batches.cancel(
            t.batch, vector_store_id=t.vector_store
        ),
    ),
    Attempt(
        "file batch files list",
        lambda sdk, t, own: sdk.vector_stores.file_batches.list_files(
            t.batch, vector_store_id=t.vector_store
        ),
    ),
]


def _attachment(file_id: str) -> dict[str, Any]:
    return {"file_id": file_id, "tools": [{"type": "file_search"}]}


# Requests on the caller's own objects (or none) whose JSON body names the target's.
BODY_ATTEMPTS = [
    Attempt(
        "run on own thread with assistant_id",
        lambda sdk, t, own: sdk.beta.threads.runs.create(own.thread, assistant_id=t.assistant),
    ),
    Attempt(
        "run with additional_messages attachment",
        lambda sdk, t, own: sdk.beta.threads.runs.create(
            own.thread,
            assistant_id=own.assistant,
            additional_messages=[
                {"role": "user", "content": "Read it", "attachments": [_attachment(t.file)]}
            ],
        ),
        param="additional_messages[0].attachments[0].file_id",
    ),
    Attempt(
        "create_and_run with assistant_id",
        lambda sdk, t, own: sdk.beta.threads.create_and_run(assistant_id=t.assistant),
    ),
    Attempt(
        "create_and_run with tool_resources file_ids",
        lambda sdk, t, own: sdk.beta.threads.create_and_run(
            assistant_id=own.assistant,
            tool_resources={"code_interpreter": {"file_ids": [t.file]}},
        ),
        param="tool_resources.code_interpreter.file_ids",
    ),
    Attempt(
        "create_and_run with thread message attachment",
        lambda sdk, t, own: sdk.beta.threads.create_and_run(
            assistant_id=own.assistant,
            thread={
                "messages": [
                    {"role": "user", "content": "Read it", "attachments": [_attachment(t.file)]}
                ]
            },
        ),
        param="thread.messages[0].attachments[0].file_id",
    ),
    Attempt(
        "message with attachment",
        lambda sdk, t, own: sdk.beta.threads.messages.create(
            own.thread, role="user", content="Read it", attachments=[_attachment(t.file)]
        ),
        param="attachments[0].file_id",
    ),
    Attempt(
        "assistant with file_search vector_store_ids",
        lambda sdk, t, own: sdk.beta.assistants.create(
            model=MODEL, tool_resources={"file_search": {"vector_store_ids": [t.vector_store]}}
        ),
        param="tool_resources.file_search.vector_store_ids",
        status=400,
    ),
    Attempt(
        "assistant with code_interpreter file_ids",
        lambda sdk, t, own: sdk.beta.assistants.create(
            model=MODEL, tool_resources={"code_interpreter": {"file_ids": [t.file]}}
        ),
        param="tool_resources.code_interpreter.file_ids",
    ),
    Attempt(
        "assistant with a new vector store of file_ids",
        lambda sdk, t, own: sdk.beta.assistants.create(
            model=MODEL,
            tool_resources={"file_search": {"vector_stores": [{"file_ids": [t.file]}]}},
        ),
        param="tool_resources.file_search.vector_stores[0].file_ids",
    ),
    Attempt(
        "own assistant updated with vector_store_ids",
        lambda sdk, t, own: sdk.beta.assistants.update(
            own.assistant,
            tool_resources={"file_search": {"vector_store_ids": [t.vector_store]}},
        ),
        param="tool_resources.file_search.vector_store_ids",
        status=400,
    ),
    Attempt(
        "vector store with file_ids",
        lambda sdk, t, own: sdk.vector_stores.create(name="taken", file_ids=[t.file]),
        param="file_ids",
    ),
    Attempt(
        "own vector store file create with file_id",
        lambda sdk, t, own: sdk.vector_stores.files.create(own.vector_store, file_id=t.file),
        param="file_id",
    ),
    Attempt(
        "own file batch create with file_ids",
        lambda sdk, t, own: sdk.vector_stores.file_batches.create(
            own.vector_store, file_ids=[t.file]
        ),
        param="file_ids",
    ),
    Attempt(
        "thread with tool_resources vector_store_ids",
        lambda sdk, t, own: sdk.beta.threads.create(
            tool_resources={"file_search": {"vector_store_ids": [t.vector_store]}}
        ),
        param="tool_resources.file_search.vector_store_ids",
        status=400,
    ),
    Attempt(
        "thread with message attachment",
        lambda sdk, t, own: sdk.beta.threads.create(
            messages=[{"role": "user", "content": "Read it", "attachments": [_attachment(t.file)]}]
        ),
        param="messages[0].attachments[0].file_id",
    ),
    Attempt(
        "own thread updated with code_interpreter file_ids",
        lambda sdk, t, own: sdk.beta.threads.update(
            own.thread, tool_resources={"code_interpreter": {"file_ids": [t.file]}}
        ),
        param="tool_resources.code_interpreter.file_ids",
    ),
]

ATTEMPTS = PATH_ATTEMPTS + BODY_ATTEMPTS


def refusal(call: Callable[[], Any]) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as caught:
        result = call()
        if isinstance(result, openai.Stream):
            result.close()
    return caught.value


def answer(error: openai.APIStatusError) -> dict[str, Any]:
    """What a client is told: the status and the error's message, type, param and code."""
    assert isinstance(error.body, dict), error
    return {"status": error.status_code, **error.body}


def upstream_refusal(
    upstream_sdk: openai.OpenAI, attempt: Attempt, target: Objects, own: Objects
) -> dict[str, Any]:
    """The upstream's own answer to `attempt` when the objects it names do not exist: sent
    to the upstream directly with made-up ids, and read back with `target`'s ids."""
    made_up = target.made_up()
    error = refusal(lambda: attempt.call(upstream_sdk, made_up, own))
    assert error.status_code == attempt.status, error
    return {
        name: made_up.translate(value, target) if isinstance(value, str) else value
        for name, value in answer(error).items()
    }


def forwarded(upstream: Upstream) -> list[str]:
    return [f"{request['method']} {request['path']}" for request in upstream.requests()]


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=str)
def test_another_orgs_object_is_missing(
    attempt: Attempt, a: Tenant, b: Tenant, upstream_sdk: openai.OpenAI, upstream: Upstream
) -> None:
    """B names A's object: B gets the upstream's refusal of a missing object, word for word and
    with its `param` (the table's, checked against the upstream too), and the upstream
    receives nothing."""
    expected = upstream_refusal(upstream_sdk, attempt, a.objects, b.objects)
    assert expected["param"] == attempt.param
    upstream.clear_requests()

    error = refusal(lambda: attempt.call(b.sdk, a.objects, b.objects))

    assert forwarded(upstream) == []
    assert error.status_code == attempt.status
    assert answer(error) == expected


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=str)
def test_a_made_up_id_gets_the_same_refusal_as_another_orgs(
    attempt: Attempt, a: Tenant, b: Tenant, upstream: Upstream
) -> None:
    """Ids nobody ever saw, where the other org's ids were: the same error, word for word,
    and the same gateway headers, so existing elsewhere and not existing look alike."""
    foreign = refusal(lambda: attempt.call(b.sdk, a.objects, b.objects))
    made_up = a.objects.made_up()
    upstream.clear_requests()

    unknown = refusal(lambda: attempt.call(b.sdk, made_up, b.objects))

    assert forwarded(upstream) == []
    assert unknown.status_code == attempt.status
    assert answer(unknown) == {
        name: a.objects.translate(value, made_up) if isinstance(value, str) else value
        for name, value in answer(foreign).items()
    }
    provider = "x-prism-provider"
    assert unknown.response.headers[provider] == foreign.response.headers[provider] == "prism"


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=str)
def test_the_owner_keeps_full_access(attempt: Attempt, a: Tenant, upstream: Upstream) -> None:
    """The same requests as A's own: forwarded, and answered by the upstream. Were ownership
    never recorded, these would be the 404s."""
    upstream.clear_requests()

    result = attempt.call(a.sdk, a.objects, a.objects)
    if isinstance(result, openai.Stream):
        assert [event.event for event in result][-1] == "thread.run.completed"

    assert forwarded(upstream) != []


# Objects reached through one of the caller's own: the gateway forwards these, and the
# upstream finds no such object under the caller's.
NESTED_ATTEMPTS = [
    Attempt(
        "message under own thread",
        lambda sdk, t, own: sdk.beta.threads.messages.retrieve(t.message, thread_id=own.thread),
    ),
    Attempt(
        "run under own thread",
        lambda sdk, t, own: sdk.beta.threads.runs.retrieve(t.run, thread_id=own.thread),
    ),
    Attempt(
        "step under own run",
        lambda sdk, t, own: sdk.beta.threads.runs.steps.retrieve(
            t.step, thread_id=own.thread, run_id=own.run
        ),
    ),
    Attempt(
        "file under own vector store",
        lambda sdk, t, own: sdk.vector_stores.files.retrieve(
            t.file, vector_store_id=own.vector_store
        ),
    ),
    Attempt(
        "file batch under own vector store",
        lambda sdk, t, own: sdk.vector_stores.file_batches.retrieve(
            t.batch, vector_store_id=own.vector_store
        ),
    ),
]


@pytest.mark.parametrize("attempt", NESTED_ATTEMPTS, ids=str)
def test_another_orgs_object_under_an_own_one_is_missing(
    attempt: Attempt, a: Tenant, b: Tenant, upstream_sdk: openai.OpenAI
) -> None:
    expected = upstream_refusal(upstream_sdk, attempt, a.objects, b.objects)

    error = refusal(lambda: attempt.call(b.sdk, a.objects, b.objects))

    assert isinstance(error, openai.NotFoundError)
    assert answer(error) == expected


# Per kind: the owner's delete, and a retrieve by anyone.
DELETIONS = {
    "assistant": ("assistant delete", "assistant retrieve"),
    "thread": ("thread delete", "thread retrieve"),
    "file": ("file delete", "file retrieve"),
    "vector store": ("vector store delete", "vector store retrieve"),
}
_BY_NAME = {attempt.name: attempt for attempt in ATTEMPTS}


@pytest.mark.redis_cluster
@pytest.mark.parametrize("kind", DELETIONS)
def test_an_object_its_owner_deleted_is_missing_for_everyone(
    kind: str, a: Tenant, b: Tenant, upstream_sdk: openai.OpenAI
) -> None:
    delete, retrieve = (_BY_NAME[name] for name in DELETIONS[kind])
    expected = upstream_refusal(upstream_sdk, retrieve, a.objects, b.objects)
    assert retrieve.call(a.sdk, a.objects, a.objects).id

    assert delete.call(a.sdk, a.objects, a.objects).deleted

    for tenant in (a, b):
        error = refusal(lambda tenant=tenant: retrieve.call(tenant.sdk, a.objects, tenant.objects))
        assert isinstance(error, openai.NotFoundError)
        assert answer(error) == expected


@pytest.mark.redis_cluster
def test_every_key_of_an_org_shares_its_objects(
    a: Tenant, b: Tenant, admin: AdminClient, dataplane: DataPlane
) -> None:
    """Ownership is the org's: a second key of A's org reaches A's objects, B's key does not."""
    second = admin.CreateKey(
        admin_pb2.CreateKeyRequest(key=admin_pb2.Key(org_id=a.org_id, name="second key"))
    )
    retrieves = [_BY_NAME[f"{kind} retrieve"] for kind in DELETIONS]
    with openai.OpenAI(base_url=dataplane.url, api_key=second.secret, max_retries=0) as sdk:
        for retrieve in retrieves:
            assert retrieve.call(sdk, a.objects, a.objects).id
            with pytest.raises(openai.NotFoundError):
                retrieve.call(b.sdk, a.objects, b.objects)


@pytest.mark.redis_cluster
def test_a_streamed_thread_is_the_owners_from_the_first_event(
    a: Tenant, b: Tenant, upstream: Upstream
) -> None:
    """The upstream sends `thread.created` and hangs up without ending the response: the
    thread is A's as soon as A has that event (the gateway records it before relaying it),
    not once a stream ends, which this one never does cleanly."""
    upstream.add_fault(method="POST", path="/v1/threads/runs", cut_stream_after_events=1)
    sdk = a.sdk.with_options(timeout=PATIENCE_SECONDS)

    with sdk.beta.threads.create_and_run(assistant_id=a.objects.assistant, stream=True) as stream:
        first = next(iter(stream))
        assert first.event == "thread.created"

        assert a.sdk.beta.threads.retrieve(first.data.id).id == first.data.id
        updated = a.sdk.beta.threads.update(first.data.id, metadata={"seen": "first event"})
        assert updated.metadata == {"seen": "first event"}
        with pytest.raises(openai.NotFoundError):
            b.sdk.beta.threads.retrieve(first.data.id)


@pytest.mark.redis_cluster
def test_a_streamed_thread_and_run_are_the_owners_only(a: Tenant, b: Tenant) -> None:
    """A whole stream: the thread is A's from the first event, its run once it is over."""
    with a.sdk.beta.threads.create_and_run(assistant_id=a.objects.assistant, stream=True) as stream:
        events = iter(stream)
        first = next(events)
        assert first.event == "thread.created"
        thread_id = first.data.id
        assert a.sdk.beta.threads.retrieve(thread_id).id == thread_id
        rest = list(events)
    run_id = next(event.data.id for event in rest if event.event == "thread.run.created")
    assert rest[-1].event == "thread.run.completed"

    assert a.sdk.beta.threads.runs.retrieve(run_id, thread_id=thread_id).status == "completed"
    assert a.sdk.beta.threads.messages.list(thread_id).data
    with pytest.raises(openai.NotFoundError):
        b.sdk.beta.threads.retrieve(thread_id)
    with pytest.raises(openai.NotFoundError):
        b.sdk.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
