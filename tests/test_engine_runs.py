"""The engine's runs and run steps, through the official OpenAI SDK pointed at the engine (and
once through the gateway): the offline model answering a tutor's thread, function tools
through requires_action, one active run per thread, cancel, a failing provider, and a run
whose engine was killed mid-run ended by another engine."""

import asyncio
import json
import os
import secrets
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from engine.runs.queue import MAX_CLAIMS
from prism import redis_client, redis_keys
from tests.conftest import (
    DataPlane,
    IssueKey,
    assert_one_clear_line,
    start_and_fail,
)
from tests.fake_chat.server import FakeChat, Reply, refused_url
from tests.openapi_schemas import validate, validated
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


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    return body["error"]


def test_tutor_answers_through_create_and_poll(
    engine_client: openai.OpenAI, engine_http: httpx.Client
) -> None:
    tutor = engine_client.beta.assistants.create(
        model="gpt-4o", name="Tutor", instructions="You are a patient math tutor."
    )
    thread = engine_client.beta.threads.create(
        messages=[{"role": "user", "content": "What is the derivative of x squared?"}]
    )
    run = engine_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=tutor.id, poll_interval_ms=POLL_MS
    )
    assert run.status == "completed", run.last_error
    assert run.model == "gpt-4o" and run.instructions == "You are a patient math tutor."
    assert run.usage is not None and run.usage.prompt_tokens > 0
    assert run.usage.total_tokens == run.usage.prompt_tokens + run.usage.completion_tokens
    assert run.started_at and run.completed_at and run.last_error is None

    body = validated("RunObject", engine_http.get(f"/v1/threads/{thread.id}/runs/{run.id}").json())
    assert body["truncation_strategy"] == {"type": "auto", "last_messages": None}
    assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is True

    messages = engine_client.beta.threads.messages.list(thread.id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"]
    reply = messages[1]
    assert reply.content[0].text.value == 'You asked: "What is the derivative of x squared?".'  # type: ignore[union-attr]
    assert (reply.run_id, reply.assistant_id) == (run.id, tutor.id)
    by_run = engine_client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert [m.id for m in by_run] == [reply.id]

    steps_path = f"/v1/threads/{thread.id}/runs/{run.id}/steps"
    steps = validated("ListRunStepsResponse", engine_http.get(steps_path).json())
    (step,) = steps["data"]
    assert step["type"] == "message_creation" and step["status"] == "completed"
    assert step["step_details"]["message_creation"]["message_id"] == reply.id
    assert step["metadata"]["provider"] == "offline"
    assert step["usage"]["total_tokens"] == run.usage.total_tokens
    one = engine_http.get(f"/v1/threads/{thread.id}/runs/{run.id}/steps/{step['id']}").json()
    assert validated("RunStepObject", one) == step

    runs = validated("ListRunsResponse", engine_http.get(f"/v1/threads/{thread.id}/runs").json())
    assert [r["id"] for r in runs["data"]] == [run.id]


def test_create_thread_and_run_with_run_options(
    engine_client: openai.OpenAI, engine_http: httpx.Client
) -> None:
    tutor = engine_client.beta.assistants.create(model="gpt-4o", instructions="Tutor.")
    run = engine_client.beta.threads.create_and_run_poll(
        assistant_id=tutor.id,
        thread={"messages": [{"role": "user", "content": "Why is the sky blue?"}]},
        instructions="Answer briefly.",
        metadata={"lesson": "physics"},
        truncation_strategy={"type": "last_messages", "last_messages": 1},
        poll_interval_ms=POLL_MS,
    )
    assert run.status == "completed"
    assert run.instructions == "Answer briefly." and run.metadata == {"lesson": "physics"}
    (reply,) = engine_client.beta.threads.messages.list(run.thread_id, run_id=run.id).data
    assert "Why is the sky blue?" in reply.content[0].text.value  # type: ignore[union-attr]

    modified = engine_http.post(
        f"/v1/threads/{run.thread_id}/runs/{run.id}", json={"metadata": {"graded": "yes"}}
    ).json()
    assert validated("RunObject", modified)["metadata"] == {"graded": "yes"}


def test_function_tool_through_requires_action(
    engine_client: openai.OpenAI, engine_http: httpx.Client
) -> None:
    assistant = engine_client.beta.assistants.create(model="gpt-4o", tools=[WEATHER_TOOL])
    thread = engine_client.beta.threads.create(
        messages=[{"role": "user", "content": "What is the weather forecast in Paris?"}]
    )
    run = engine_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=POLL_MS
    )
    assert run.status == "requires_action"
    validated("RunObject", engine_http.get(f"/v1/threads/{thread.id}/runs/{run.id}").json())
    assert run.required_action is not None
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.name == "get_weather" and "Paris" in call.function.arguments
    (step,) = engine_client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.type == "tool_calls" and step.status == "in_progress"

    # Outputs must answer exactly the calls asked for.
    wrong = engine_http.post(
        f"/v1/threads/{thread.id}/runs/{run.id}/submit_tool_outputs",
        json={"tool_outputs": [{"tool_call_id": "call_other", "output": "x"}]},
    )
    assert wrong.status_code == 400 and error_of(wrong)["param"] == "tool_outputs"

    done = engine_client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "sunny, 24 C"}],
        poll_interval_ms=POLL_MS,
    )
    assert done.status == "completed" and done.required_action is None
    (reply,) = engine_client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert "get_weather returned sunny, 24 C" in reply.content[0].text.value  # type: ignore[union-attr]
    steps = validated(
        "ListRunStepsResponse",
        engine_http.get(
            f"/v1/threads/{thread.id}/runs/{run.id}/steps", params={"order": "asc"}
        ).json(),
    )["data"]
    assert [s["type"] for s in steps] == ["tool_calls", "message_creation"]
    assert steps[0]["status"] == "completed"
    assert steps[0]["step_details"]["tool_calls"][0]["function"]["output"] == "sunny, 24 C"

    again = engine_http.post(
        f"/v1/threads/{thread.id}/runs/{run.id}/submit_tool_outputs",
        json={"tool_outputs": [{"tool_call_id": call.id, "output": "x"}]},
    )
    assert again.status_code == 400
    assert error_of(again)["message"] == 'Runs in status "completed" do not accept tool outputs.'


def test_one_active_run_per_thread_and_cancel(
    engine_client: openai.OpenAI, engine_http: httpx.Client
) -> None:
    assistant = engine_client.beta.assistants.create(model="gpt-4o", tools=[WEATHER_TOOL])
    thread = engine_client.beta.threads.create(
        messages=[{"role": "user", "content": "Weather forecast for Oslo please"}]
    )
    waiting = engine_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=POLL_MS
    )
    assert waiting.status == "requires_action"

    second = engine_http.post(f"/v1/threads/{thread.id}/runs", json={"assistant_id": assistant.id})
    assert second.status_code == 400
    assert error_of(second)["message"] == (
        f"Thread {thread.id} already has an active run {waiting.id}."
    )

    blocked = engine_http.post(
        f"/v1/threads/{thread.id}/messages", json={"role": "user", "content": "And Bergen?"}
    )
    assert blocked.status_code == 400
    assert error_of(blocked)["message"] == (
        f"Can't add messages to {thread.id} while a run {waiting.id} is active."
    )

    cancelled = engine_client.beta.threads.runs.cancel(waiting.id, thread_id=thread.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    assert cancelled.required_action is None
    again = engine_http.post(f"/v1/threads/{thread.id}/runs/{waiting.id}/cancel")
    assert again.status_code == 400
    assert error_of(again)["message"] == "Cannot cancel run with status 'cancelled'."

    # The thread takes a new run once the first has ended.
    plain = engine_client.beta.assistants.create(model="gpt-4o")
    run = engine_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=plain.id, poll_interval_ms=POLL_MS
    )
    assert run.status == "completed"


def test_token_limits_end_runs_incomplete(engine_client: openai.OpenAI) -> None:
    tutor = engine_client.beta.assistants.create(model="gpt-4o")
    long_question = "Why " + " ".join(f"word{i}" for i in range(400)) + "?"
    thread = engine_client.beta.threads.create(
        messages=[{"role": "user", "content": long_question}]
    )
    cut = engine_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=tutor.id,
        max_completion_tokens=256,
        poll_interval_ms=POLL_MS,
    )
    assert cut.status == "incomplete"
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_completion_tokens"
    (reply,) = engine_client.beta.threads.messages.list(thread.id, run_id=cut.id).data
    assert reply.status == "incomplete"
    assert reply.content[0].text.value.startswith('You asked: "Why word0')  # type: ignore[union-attr]

    unfit = engine_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=tutor.id,
        max_prompt_tokens=256,
        truncation_strategy={"type": "last_messages", "last_messages": 1},
        poll_interval_ms=POLL_MS,
    )
    assert unfit.status == "incomplete"
    assert unfit.incomplete_details is not None
    assert unfit.incomplete_details.reason == "max_prompt_tokens"


def test_a_run_waiting_for_tool_outputs_expires(
    engine_client: openai.OpenAI, engine_http: httpx.Client, redis_url: str
) -> None:
    assistant = engine_client.beta.assistants.create(model="gpt-4o", tools=[WEATHER_TOOL])
    run = engine_client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Weather forecast for Lima"}]},
        poll_interval_ms=POLL_MS,
    )
    assert run.status == "requires_action" and run.expires_at is not None
    assert run.expires_at - run.created_at == 600

    async def age() -> None:
        # As if its ten minutes had passed.
        async with redis_client.async_client(redis_url, decode_responses=True) as redis:
            key = redis_keys.engine_run(run.thread_id, run.id)
            stored = json.loads(await redis.get(key))
            stored["expires_at"] = stored["created_at"] - 1
            await redis.set(key, json.dumps(stored))

    asyncio.run(age())
    expired = engine_client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id)
    assert expired.status == "expired" and expired.required_action is None
    late = engine_http.post(
        f"/v1/threads/{run.thread_id}/runs/{run.id}/submit_tool_outputs",
        json={"tool_outputs": [{"tool_call_id": "call_x", "output": "x"}]},
    )
    assert late.status_code == 400
    assert error_of(late)["message"] == 'Runs in status "expired" do not accept tool outputs.'
    # The thread is free again.
    plain = engine_client.beta.assistants.create(model="gpt-4o")
    again = engine_client.beta.threads.runs.create_and_poll(
        thread_id=run.thread_id, assistant_id=plain.id, poll_interval_ms=POLL_MS
    )
    assert again.status == "completed"


def test_invalid_run_requests(engine_client: openai.OpenAI, engine_http: httpx.Client) -> None:
    tutor = engine_client.beta.assistants.create(model="gpt-4o")
    thread = engine_client.beta.threads.create()
    runs = f"/v1/threads/{thread.id}/runs"
    cases: list[tuple[str, dict[str, Any], int, str | None]] = [
        (runs, {}, 400, "assistant_id"),
        (runs, {"assistant_id": tutor.id, "stream": "yes"}, 400, "stream"),
        (
            f"/v1/threads/{thread.id}/runs",
            {"assistant_id": tutor.id, "max_prompt_tokens": 10},
            400,
            "max_prompt_tokens",
        ),
        (
            f"/v1/threads/{thread.id}/runs",
            {"assistant_id": tutor.id, "tool_choice": "sometimes"},
            400,
            "tool_choice",
        ),
        (f"/v1/threads/{thread.id}/runs", {"assistant_id": "asst_missing"}, 404, None),
        ("/v1/threads/thread_missing/runs", {"assistant_id": tutor.id}, 404, None),
    ]
    for path, body, status, param in cases:
        response = engine_http.post(path, json=body)
        assert response.status_code == status, (path, body, response.text)
        assert error_of(response)["param"] == param
    missing = engine_http.get(f"/v1/threads/{thread.id}/runs/run_missing")
    assert missing.status_code == 404
    assert error_of(missing)["message"] == "No run found with id 'run_missing'."
    # Nothing was queued by the refused requests.
    assert engine_http.get(f"/v1/threads/{thread.id}/runs").json()["data"] == []


def test_gateway_runs_an_assistant_on_the_engine(
    engine_gateway: DataPlane, issue_key: IssueKey
) -> None:
    _, issued = issue_key()
    with openai.OpenAI(base_url=engine_gateway.url, api_key=issued.secret, max_retries=0) as sdk:
        tutor = sdk.beta.assistants.create(model="gpt-4o", instructions="You are a tutor.")
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "What is 7 x 6?"}])
        run = sdk.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=tutor.id, poll_interval_ms=POLL_MS
        )
        assert run.status == "completed"
        (reply,) = sdk.beta.threads.messages.list(thread.id, run_id=run.id).data
        assert reply.content[0].text.value == 'You asked: "What is 7 x 6?".'  # type: ignore[union-attr]
        assert len(sdk.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data) == 1

        # A streamed run through the gateway relays the same answer as it is produced.
        sdk.beta.threads.messages.create(thread.id, role="user", content="And 8 x 6?")
        recorder = Recorder()
        with sdk.beta.threads.runs.stream(
            thread_id=thread.id, assistant_id=tutor.id, event_handler=recorder
        ) as stream:
            stream.until_done()
        assert "".join(recorder.deltas) == 'You asked: "And 8 x 6?".'
        assert recorder.events[-1] == "thread.run.completed"


class Recorder(openai.AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.deltas: list[str] = []

    def on_event(self, event: Any) -> None:
        self.events.append(event.event)

    def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.deltas.append(delta.value)


def test_a_streamed_run_relays_the_answer(engine_client: openai.OpenAI) -> None:
    tutor = engine_client.beta.assistants.create(model="gpt-4o", instructions="You are a tutor.")
    thread = engine_client.beta.threads.create(
        messages=[{"role": "user", "content": "Explain photosynthesis in one line"}]
    )
    recorder = Recorder()
    with engine_client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=tutor.id, event_handler=recorder
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
    assert final.status == "completed" and final.usage is not None
    (reply,) = engine_client.beta.threads.messages.list(thread.id, run_id=final.id).data
    text = reply.content[0].text.value  # type: ignore[union-attr]
    assert text == 'You asked: "Explain photosynthesis in one line".'
    assert "".join(recorder.deltas) == text and len(recorder.deltas) > 3
    events = recorder.events
    assert events[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert events[3:7] == [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
    ]
    assert events[-3:] == [
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert set(events[7:-3]) == {"thread.message.delta"}


def _events(response: httpx.Response) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a server-sent events answer."""
    assert response.headers["content-type"].startswith("text/event-stream")
    pairs: list[tuple[str, Any]] = []
    event = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
            pairs.append((event, data if data == "[DONE]" else json.loads(data)))
    return pairs


def test_a_streamed_function_tool_with_a_new_thread(
    engine_client: openai.OpenAI, engine_http: httpx.Client
) -> None:
    assistant = engine_client.beta.assistants.create(model="gpt-4o", tools=[WEATHER_TOOL])
    body = {
        "assistant_id": assistant.id,
        "stream": True,
        "thread": {"messages": [{"role": "user", "content": "Weather forecast in Rome?"}]},
    }
    with engine_http.stream("POST", "/v1/threads/runs", json=body) as response:
        events = _events(response)
    names = [name for name, _ in events]
    assert names[:3] == ["thread.created", "thread.run.created", "thread.run.queued"]
    assert names[-4:] == [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.requires_action",
        "done",
    ]
    validate("ThreadObject", events[0][1])
    run = validate_run(events[-2][1])
    (call,) = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"

    recorder = Recorder()
    with engine_client.beta.threads.runs.submit_tool_outputs_stream(
        run_id=run["id"],
        thread_id=run["thread_id"],
        tool_outputs=[{"tool_call_id": call["id"], "output": "rainy"}],
        event_handler=recorder,
    ) as stream:
        stream.until_done()
    assert recorder.events[0] == "thread.run.queued"
    assert recorder.events[-1] == "thread.run.completed"
    assert "".join(recorder.deltas) == "Here is what I found: get_weather returned rainy."


def validate_run(body: Any) -> dict[str, Any]:
    validate("RunObject", body)
    return body


def test_deleting_a_thread_deletes_its_runs(
    engine_client: openai.OpenAI, engine_http: httpx.Client, redis_url: str
) -> None:
    tutor = engine_client.beta.assistants.create(model="gpt-4o")
    run = engine_client.beta.threads.create_and_run_poll(
        assistant_id=tutor.id,
        thread={"messages": [{"role": "user", "content": "Hi"}]},
        poll_interval_ms=POLL_MS,
    )
    assert run.status == "completed"
    engine_client.beta.threads.delete(run.thread_id)
    assert engine_http.get(f"/v1/threads/{run.thread_id}/runs/{run.id}").status_code == 404

    async def leftovers() -> list[str]:
        async with redis_client.async_client(redis_url, decode_responses=True) as redis:
            return [key async for key in redis.scan_iter(f"*{run.thread_id}*")]

    assert asyncio.run(leftovers()) == []


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("PRISM_ENGINE_MODELS", "{missing}"),
        ("PRISM_ENGINE_MODELS", "{bad}"),
        ("PRISM_ENGINE_RUN_WORKERS", "0"),
        ("PRISM_ENGINE_RUN_LEASE_SECONDS", "soon"),
    ],
)
def test_a_bad_run_setting_stops_the_start_with_one_line(
    setting: str, value: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[models."gpt-4o"]\nbase_url = 12\n')
    missing = tmp_path / "missing.toml"
    settings = {"PRISM_ENGINE_API_KEY": "k", setting: value.format(bad=bad, missing=missing)}
    result = start_and_fail("engine", settings)
    assert_one_clear_line(result, "engine", 2, setting)


# Private engines, each on its own Redis database so that only they work on their runs.


def _private_settings(
    redis_url: str, database: int, workdir: Path, models: Path | None, lease: float = 15
) -> dict[str, str]:
    settings = {
        "PRISM_ENGINE_LISTEN": f"127.0.0.1:{stack.free_port()}",
        "PRISM_ENGINE_API_KEY": "sk-engine-" + secrets.token_urlsafe(16),
        "PRISM_ENGINE_REDIS_URL": redis_url.rpartition("/")[0] + f"/{database}",
        "PRISM_ENGINE_DATA_DIR": str(workdir / f"engine-data-{database}"),
        "PRISM_ENGINE_RUN_LEASE_SECONDS": str(lease),
    }
    if models is not None:
        settings["PRISM_ENGINE_MODELS"] = str(models)
    return settings


def _async_client(settings: dict[str, str]) -> openai.AsyncOpenAI:
    url = "http://" + settings["PRISM_ENGINE_LISTEN"] + "/v1"
    return openai.AsyncOpenAI(base_url=url, api_key=settings["PRISM_ENGINE_API_KEY"], max_retries=0)


def test_a_failing_provider_fails_the_run_with_last_error(
    redis_url: str, tmp_path: Path, logs: Path
) -> None:
    models = tmp_path / "models.toml"
    models.write_text(f'[models."gpt-4o"]\nbase_url = "{refused_url()}"\n')
    settings = _private_settings(redis_url, 5, tmp_path, models)
    process = stack.start_engine(settings, logs, name="engine-failing")
    try:
        url = "http://" + settings["PRISM_ENGINE_LISTEN"] + "/v1"
        with openai.OpenAI(
            base_url=url, api_key=settings["PRISM_ENGINE_API_KEY"], max_retries=0
        ) as sdk:
            tutor = sdk.beta.assistants.create(model="gpt-4o")
            run = sdk.beta.threads.create_and_run_poll(
                assistant_id=tutor.id,
                thread={"messages": [{"role": "user", "content": "Hello?"}]},
                poll_interval_ms=POLL_MS,
            )
            assert run.status == "failed" and run.failed_at is not None
            assert run.last_error is not None and run.last_error.code == "server_error"
            assert "connection error" in run.last_error.message
            assert sdk.beta.threads.messages.list(run.thread_id, run_id=run.id).data == []
            # The thread is free again.
            other = sdk.beta.assistants.create(model="gpt-4o-unrouted")
            second = sdk.beta.threads.runs.create_and_poll(
                thread_id=run.thread_id, assistant_id=other.id, poll_interval_ms=POLL_MS
            )
            assert second.status == "failed"
            assert second.last_error is not None and "gpt-4o-unrouted" in second.last_error.message
    finally:
        process.stop()


async def _wait_for(
    sdk: openai.AsyncOpenAI, thread_id: str, run_id: str, statuses: set[str], timeout: float
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        run = await sdk.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status in statuses or time.monotonic() > deadline:
            return run
        await asyncio.sleep(0.05)


async def _until_asked(fake: FakeChat) -> None:
    """Until the model has the run's request: the run is then mid-answer."""
    deadline = time.monotonic() + 10
    while not fake.received and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert fake.received, "the engine never asked the model"


def test_cancel_stops_a_run_in_progress(redis_url: str, tmp_path: Path, logs: Path) -> None:
    async def main() -> None:
        fake = FakeChat()
        url = await fake.start()
        models = tmp_path / "models.toml"
        models.write_text(f'[models."slow"]\nbase_url = "{url}"\n')
        settings = _private_settings(redis_url, 6, tmp_path, models)
        process = await asyncio.to_thread(stack.start_engine, settings, logs, "engine-cancel")
        try:
            fake.script.append(Reply(text=["never", " seen"] * 20, delay=0.5))
            async with _async_client(settings) as sdk:
                slow = await sdk.beta.assistants.create(model="slow")
                run = await sdk.beta.threads.create_and_run(
                    assistant_id=slow.id,
                    thread={"messages": [{"role": "user", "content": "Take your time."}]},
                )
                started = await _wait_for(sdk, run.thread_id, run.id, {"in_progress"}, 10)
                assert started.status == "in_progress"
                cancelling = await sdk.beta.threads.runs.cancel(run.id, thread_id=run.thread_id)
                assert cancelling.status == "cancelling"
                ended = await _wait_for(sdk, run.thread_id, run.id, {"cancelled"}, 10)
                assert ended.status == "cancelled" and ended.cancelled_at is not None
                messages = await sdk.beta.threads.messages.list(run.thread_id, run_id=run.id)
                assert messages.data == []
        finally:
            await asyncio.to_thread(process.stop)
            await fake.close()

    asyncio.run(main())


def test_a_run_whose_engine_was_killed_is_finished_by_another(
    redis_url: str, tmp_path: Path, logs: Path
) -> None:
    async def main() -> None:
        fake = FakeChat()
        url = await fake.start()
        models = tmp_path / "models.toml"
        models.write_text(f'[models."slow"]\nbase_url = "{url}"\n')
        first = _private_settings(redis_url, 7, tmp_path, models, lease=1)
        process = await asyncio.to_thread(stack.start_engine, first, logs, "engine-killed")
        try:
            # The first engine's answer never ends; the second engine's comes at once.
            fake.script.append(Reply(text=["slow"] * 100, delay=0.5))
            fake.script.append(Reply(text=["Recovered", " answer"]))
            async with _async_client(first) as sdk:
                slow = await sdk.beta.assistants.create(model="slow")
                run = await sdk.beta.threads.create_and_run(
                    assistant_id=slow.id,
                    thread={"messages": [{"role": "user", "content": "Are you there?"}]},
                )
                started = await _wait_for(sdk, run.thread_id, run.id, {"in_progress"}, 10)
                assert started.status == "in_progress"
            await _until_asked(fake)
            os.kill(process.pid, signal.SIGKILL)
            await asyncio.to_thread(process.popen.wait)

            second = {**first, "PRISM_ENGINE_LISTEN": f"127.0.0.1:{stack.free_port()}"}
            survivor = await asyncio.to_thread(stack.start_engine, second, logs, "engine-survivor")
            try:
                async with _async_client(second) as sdk:
                    ended = await _wait_for(sdk, run.thread_id, run.id, {"completed"}, 15)
                    assert ended.status == "completed", ended
                    (reply,) = (
                        await sdk.beta.threads.messages.list(run.thread_id, run_id=run.id)
                    ).data
                    assert reply.content[0].text.value == "Recovered answer"  # type: ignore[union-attr]
                # Both engines asked the model: the second took the run over.
                assert len(fake.received) == 2
                assert f"run {run.id}: picked up again" in survivor.log()
            finally:
                await asyncio.to_thread(survivor.stop)
        finally:
            await asyncio.to_thread(process.stop)
            await fake.close()

    asyncio.run(main())


def test_a_run_that_keeps_killing_its_workers_ends_failed(
    redis_url: str, tmp_path: Path, logs: Path
) -> None:
    async def main() -> None:
        fake = FakeChat()
        url = await fake.start()
        models = tmp_path / "models.toml"
        models.write_text(f'[models."slow"]\nbase_url = "{url}"\n')
        first = _private_settings(redis_url, 8, tmp_path, models, lease=1)
        process = await asyncio.to_thread(stack.start_engine, first, logs, "engine-dying")
        try:
            fake.script.append(Reply(text=["slow"] * 100, delay=0.5))
            async with _async_client(first) as sdk:
                slow = await sdk.beta.assistants.create(model="slow")
                run = await sdk.beta.threads.create_and_run(
                    assistant_id=slow.id,
                    thread={"messages": [{"role": "user", "content": "Still there?"}]},
                )
                started = await _wait_for(sdk, run.thread_id, run.id, {"in_progress"}, 10)
                assert started.status == "in_progress"
            await _until_asked(fake)
            os.kill(process.pid, signal.SIGKILL)
            await asyncio.to_thread(process.popen.wait)
            # As if two more workers had died on this run before.
            async with redis_client.async_client(first["PRISM_ENGINE_REDIS_URL"]) as redis:
                entry = f"{run.thread_id}/{run.id}"
                await redis.hset(redis_keys.ENGINE_RUN_CLAIMS, entry, MAX_CLAIMS)

            second = {**first, "PRISM_ENGINE_LISTEN": f"127.0.0.1:{stack.free_port()}"}
            survivor = await asyncio.to_thread(stack.start_engine, second, logs, "engine-judge")
            try:
                async with _async_client(second) as sdk:
                    ended = await _wait_for(sdk, run.thread_id, run.id, {"failed"}, 15)
                    assert ended.status == "failed", ended
                    assert ended.last_error is not None
                    assert ended.last_error.code == "server_error"
                    assert "stopped 3 times" in ended.last_error.message
                    # The survivor gave the run up without asking the model again.
                    assert len(fake.received) == 1
            finally:
                await asyncio.to_thread(survivor.stop)
        finally:
            await asyncio.to_thread(process.stop)
            await fake.close()

    asyncio.run(main())


def test_run_options_reach_the_model(redis_url: str, tmp_path: Path, logs: Path) -> None:
    async def main() -> None:
        fake = FakeChat()
        url = await fake.start()
        models = tmp_path / "models.toml"
        models.write_text(f'[models."gpt-4o"]\nbase_url = "{url}"\nmodel = "upstream-4o"\n')
        settings = _private_settings(redis_url, 9, tmp_path, models)
        process = await asyncio.to_thread(stack.start_engine, settings, logs, "engine-options")
        try:
            fake.script.append(Reply(text=["Fine", "."]))
            async with _async_client(settings) as sdk:
                tutor = await sdk.beta.assistants.create(
                    model="gpt-4o", instructions="You are a tutor.", temperature=0.5
                )
                thread = await sdk.beta.threads.create(
                    messages=[
                        {"role": "user", "content": "An old question"},
                        {"role": "user", "content": "A newer question"},
                    ]
                )
                run = await sdk.beta.threads.runs.create_and_poll(
                    thread_id=thread.id,
                    assistant_id=tutor.id,
                    additional_instructions="Be brief.",
                    additional_messages=[{"role": "user", "content": "The newest question"}],
                    truncation_strategy={"type": "last_messages", "last_messages": 2},
                    top_p=0.9,
                    max_completion_tokens=300,
                    poll_interval_ms=POLL_MS,
                )
                assert run.status == "completed", run.last_error
                assert (run.temperature, run.top_p) == (0.5, 0.9)
                (received,) = fake.received
                assert received.body["model"] == "upstream-4o"
                assert received.body["messages"] == [
                    {"role": "system", "content": "You are a tutor.\n\nBe brief."},
                    {"role": "user", "content": "A newer question"},
                    {"role": "user", "content": "The newest question"},
                ]
                assert received.body["temperature"] == 0.5
                assert received.body["top_p"] == 0.9
                assert received.body["max_completion_tokens"] == 300
                # The additional message is in the thread now, before the reply.
                texts = [
                    m.content[0].text.value  # type: ignore[union-attr]
                    for m in (await sdk.beta.threads.messages.list(thread.id, order="asc")).data
                ]
                assert texts[2:] == ["The newest question", "Fine."]
        finally:
            await asyncio.to_thread(process.stop)
            await fake.close()

    asyncio.run(main())
