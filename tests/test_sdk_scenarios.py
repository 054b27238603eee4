"""The Assistants workflows applications run, through the gateway with the OpenAI SDK and
nothing changed but base_url and the key."""

import openai
import pytest
from openai import AssistantEventHandler
from openai.types.beta.threads import Message, Text, TextDelta

# Also on a Redis Cluster (tests/conftest.py).
pytestmark = pytest.mark.redis_cluster

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def _reply_text(client: openai.OpenAI, thread_id: str) -> Message:
    messages = client.beta.threads.messages.list(thread_id, order="desc")
    reply = messages.data[0]
    assert reply.role == "assistant"
    return reply


def test_tutor_answers_with_create_and_poll(client: openai.OpenAI) -> None:
    tutor = client.beta.assistants.create(
        name="Math Tutor",
        instructions="You are a personal math tutor. Answer briefly.",
        model="gpt-4o",
    )
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(thread.id, role="user", content="Solve 3x + 11 = 14")

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=tutor.id)

    assert run.status == "completed"
    assert run.usage is not None and run.usage.total_tokens > 0
    reply = _reply_text(client, thread.id)
    assert reply.run_id == run.id
    assert reply.content[0].text.value


def test_weather_function_tool_round_trip(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(
        model="gpt-4o", instructions="Use tools for weather.", tools=[WEATHER_TOOL]
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "What's the weather in Paris?"}]
    )

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [call.function.name for call in calls] == ["get_weather"]

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": calls[0].id, "output": "22C and sunny"}],
    )

    assert run.status == "completed"
    assert "22C and sunny" in _reply_text(client, thread.id).content[0].text.value


def test_file_search_cites_the_uploaded_file(client: openai.OpenAI) -> None:
    handbook = (
        b"Prism handbook\n"
        b"Refunds are processed within 14 days of the request.\n"
        b"Support is available on weekdays.\n"
    )
    file = client.files.create(file=("handbook.txt", handbook), purpose="assistants")
    assert file.bytes == len(handbook)
    store = client.vector_stores.create(name="Handbook", file_ids=[file.id])
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        instructions="Answer from the handbook.",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "How many days do refunds take?"}]
    )

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "completed"
    text = _reply_text(client, thread.id).content[0].text
    assert "14 days" in text.value
    cited = [a.file_citation.file_id for a in text.annotations if a.type == "file_citation"]
    assert cited == [file.id]
    assert client.files.content(file.id).read() == handbook


class Collector(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.deltas: list[str] = []
        self.events: list[str] = []

    def on_event(self, event: object) -> None:
        self.events.append(event.event)  # type: ignore[attr-defined]

    def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
        self.deltas.append(delta.value or "")


def test_streamed_run_with_an_event_handler(client: openai.OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be helpful.")
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Tell me about streaming"}]
    )
    handler = Collector()

    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
        final = stream.get_final_messages()

    assert handler.events[0] == "thread.run.created"
    assert handler.events[-1] == "thread.run.completed"
    assert len(handler.deltas) > 1
    assert "".join(handler.deltas) == final[0].content[0].text.value
    assert _reply_text(client, thread.id).content[0].text.value == "".join(handler.deltas)
