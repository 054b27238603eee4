"""The engine's model layer against a fake Chat Completions provider on a real socket:
streaming, tool calls, usage, routing and failover, the offline model and prompt assembly."""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from engine.models.chat import ChatClient
from engine.models.prompt import (
    FunctionTool,
    Message,
    NamedFunction,
    PromptInput,
    PromptTooLongError,
    ToolOutput,
    ToolTurn,
    Truncation,
    build_request,
)
from engine.models.routing import (
    NoRouteError,
    Router,
    RoutingConfigError,
    load_routes,
    router_from_env,
)
from engine.models.types import (
    ChatEvent,
    ChatRequest,
    Finished,
    ModelError,
    RetrievedChunk,
    TextDelta,
    ToolCall,
)
from tests.fake_chat.server import Failure, FakeChat, Reply, refused_url

KEY = "sk-test-PRIMARY-0123456789abcdef"
BACKUP_KEY = "sk-test-BACKUP-fedcba9876543210"
ENV = {"PRIMARY_KEY": KEY, "BACKUP_KEY": BACKUP_KEY}

WEATHER = FunctionTool(
    name="get_weather",
    description="Current weather for a city",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
    },
)
MULTIPLY = FunctionTool(
    name="multiply",
    description="Multiply two numbers",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)


def write_routes(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def two_routes(tmp_path: Path, primary: str, backup: str, **extra: str) -> Router:
    settings = "".join(f"{name} = {value}\n" for name, value in extra.items())
    path = write_routes(
        tmp_path,
        f"""
[models."gpt-4o*"]
base_url = "{primary}"
api_key_env = "PRIMARY_KEY"
model = "upstream-4o"
fallbacks = ["backup"]
{settings}
[models.backup]
base_url = "{backup}"
api_key_env = "BACKUP_KEY"
model = "upstream-backup"
""",
    )
    return load_routes(path, ENV)


def ask(text: str, **fields: Any) -> ChatRequest:
    return build_request(
        PromptInput(model="gpt-4o-mini", messages=[Message("user", text)], **fields)
    )


async def collect(client: ChatClient, request: ChatRequest) -> list[ChatEvent]:
    return [event async for event in client.complete(request)]


def text_of(events: list[ChatEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def finished(events: list[ChatEvent]) -> Finished:
    last = events[-1]
    assert isinstance(last, Finished)
    return last


def with_fakes(
    count: int, test: Callable[..., Awaitable[None]], api_keys: tuple[str | None, ...] = ()
) -> None:
    """Runs `test(*fakes, *urls)` with `count` started fakes, closing them after."""

    async def main() -> None:
        keys = api_keys or (None,) * count
        fakes = [FakeChat(key) for key in keys]
        urls = [await fake.start() for fake in fakes]
        try:
            await test(*fakes, *urls)
        finally:
            for fake in fakes:
                await fake.close()

    asyncio.run(main())


# --- streaming, tool calls, usage, parameters ---------------------------------------------


def test_text_streams_as_the_provider_sends_it(tmp_path: Path) -> None:
    async def test(primary: FakeChat, backup: FakeChat, url: str, backup_url: str) -> None:
        primary.script.append(Reply(text=["The", " sky", " is", " blue", "."], delay=0.1))
        client = ChatClient(two_routes(tmp_path, url, backup_url))
        events = []
        async for event in client.complete(ask("What colour is the sky?")):
            if not events:
                assert isinstance(event, TextDelta)
                assert not primary.finished.is_set(), "first delta only after the whole reply"
            events.append(event)
        await client.aclose()
        assert [e.text for e in events if isinstance(e, TextDelta)] == [
            "The", " sky", " is", " blue", ".",
        ]  # fmt: skip
        done = finished(events)
        assert done.finish_reason == "stop"
        assert (done.provider.route, done.provider.host) == ("gpt-4o*", url.split("/")[2])
        assert done.provider.model == "upstream-4o"
        (received,) = primary.received
        assert received.path == "/v1/chat/completions"
        assert received.headers["authorization"] == f"Bearer {KEY}"
        assert received.body["model"] == "upstream-4o"
        assert received.body["stream"] is True
        assert received.body["stream_options"] == {"include_usage": True}
        assert received.body["messages"] == [{"role": "user", "content": "What colour is the sky?"}]
        assert not backup.received

    with_fakes(2, test)


def test_request_parameters_reach_the_provider(tmp_path: Path) -> None:
    schema = {
        "name": "answer",
        "schema": {"type": "object", "properties": {"x": {"type": "string"}}},
    }

    async def test(fake: FakeChat, url: str) -> None:
        path = write_routes(tmp_path, f'[models."gpt-4o-mini"]\nbase_url = "{url}"\n')
        client = ChatClient(load_routes(path, {}))
        request = ask(
            "hi",
            temperature=0.2,
            top_p=0.9,
            response_format={"type": "json_schema", "json_schema": schema},
            tools=[WEATHER],
            tool_choice=NamedFunction("get_weather"),
            parallel_tool_calls=False,
            max_completion_tokens=64,
        )
        await collect(client, request)
        await client.aclose()
        body = fake.received[0].body
        assert "authorization" not in fake.received[0].headers  # no api_key_env, no header
        assert body["model"] == "gpt-4o-mini"
        assert body["temperature"] == 0.2
        assert body["top_p"] == 0.9
        assert body["response_format"] == {"type": "json_schema", "json_schema": schema}
        assert body["tools"] == [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": WEATHER.description,
                    "parameters": WEATHER.parameters,
                },
            }
        ]
        assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
        assert body["parallel_tool_calls"] is False
        assert body["max_completion_tokens"] == 64

    with_fakes(1, test)


def test_no_tool_settings_are_sent_without_tools() -> None:
    body = ask("hi", tool_choice="required", parallel_tool_calls=True).wire_body("m")
    assert "tools" not in body
    assert "tool_choice" not in body
    assert "parallel_tool_calls" not in body


def test_tool_calls_are_assembled_from_fragments(tmp_path: Path) -> None:
    fragments = [
        [{"index": 0, "id": "call_a", "type": "function",
          "function": {"name": "get_weather", "arguments": ""}}],
        [{"index": 0, "function": {"arguments": '{"ci'}}],
        [{"index": 1, "id": "call_b", "type": "function",
          "function": {"name": "multiply", "arguments": '{"a": 6'}}],
        [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}],
        [{"index": 1, "function": {"arguments": ', "b": 7}'}}],
    ]  # fmt: skip

    async def test(fake: FakeChat, url: str) -> None:
        fake.script.append(Reply(tool_calls=fragments, finish_reason="tool_calls"))
        path = write_routes(tmp_path, f'[models."*"]\nbase_url = "{url}"\n')
        client = ChatClient(load_routes(path, {}))
        events = await collect(client, ask("weather and maths", tools=[WEATHER, MULTIPLY]))
        await client.aclose()
        calls = [event for event in events if isinstance(event, ToolCall)]
        assert calls == [
            ToolCall("call_a", "get_weather", '{"city": "Paris"}'),
            ToolCall("call_b", "multiply", '{"a": 6, "b": 7}'),
        ]
        assert json.loads(calls[1].arguments) == {"a": 6, "b": 7}
        assert finished(events).finish_reason == "tool_calls"

    with_fakes(1, test)


def test_usage_is_reported_with_cached_tokens(tmp_path: Path) -> None:
    usage = {
        "prompt_tokens": 120,
        "completion_tokens": 9,
        "total_tokens": 129,
        "prompt_tokens_details": {"cached_tokens": 64},
    }

    async def test(fake: FakeChat, url: str) -> None:
        fake.script.append(Reply(text=["ok"], usage=usage))
        path = write_routes(tmp_path, f'[models."*"]\nbase_url = "{url}"\n')
        client = ChatClient(load_routes(path, {}))
        done = finished(await collect(client, ask("hi")))
        await client.aclose()
        assert done.usage is not None
        assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (120, 9)
        assert done.usage.cached_tokens == 64
        assert done.usage.total_tokens == 129

    with_fakes(1, test)


# --- failover -------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["refused", 500, 503, 429, "timeout"])
def test_failover_to_the_next_provider_before_any_output(
    tmp_path: Path, failure: str | int, caplog: pytest.LogCaptureFixture
) -> None:
    async def test(primary: FakeChat, backup: FakeChat, url: str, backup_url: str) -> None:
        extra = {}
        if failure == "refused":
            url = refused_url()
        elif failure == "timeout":
            primary.script.append(Reply(text=["late"], delay=2.0))
            extra["read_timeout"] = "0.3"
        else:
            primary.script.append(Failure(int(failure)))
        backup.script.append(Reply(text=["from", " backup"]))
        client = ChatClient(two_routes(tmp_path, url, backup_url, **extra))
        with caplog.at_level(logging.WARNING, logger="engine.models"):
            events = await collect(client, ask("hello"))
        await client.aclose()
        assert text_of(events) == "from backup"
        done = finished(events)
        assert done.provider.route == "backup"
        assert done.provider.host == backup_url.split("/")[2]
        assert done.provider.model == "upstream-backup"
        assert backup.received[0].headers["authorization"] == f"Bearer {BACKUP_KEY}"
        assert "'gpt-4o*'" in caplog.text and "trying 'backup'" in caplog.text
        assert KEY not in caplog.text and BACKUP_KEY not in caplog.text

    with_fakes(2, test)


def test_no_failover_once_output_started(tmp_path: Path) -> None:
    async def test(primary: FakeChat, backup: FakeChat, url: str, backup_url: str) -> None:
        primary.script.append(Reply(text=["Half", " an", " answer"], cut_after=3))
        client = ChatClient(two_routes(tmp_path, url, backup_url))
        seen: list[ChatEvent] = []
        with pytest.raises(ModelError) as raised:
            async for event in client.complete(ask("hello")):
                seen.append(event)
        await client.aclose()
        assert text_of(seen) == "Half an"
        assert raised.value.code == "server_error"
        assert "mid-answer" in raised.value.message
        assert not backup.received

    with_fakes(2, test)


def test_an_error_event_in_the_stream_fails_over_only_before_output(tmp_path: Path) -> None:
    async def test(primary: FakeChat, backup: FakeChat, url: str, backup_url: str) -> None:
        client = ChatClient(two_routes(tmp_path, url, backup_url))
        primary.script.append(Reply(stream_error="overloaded"))
        events = await collect(client, ask("hello"))
        assert finished(events).provider.route == "backup"
        primary.script.append(Reply(text=["Partial"], stream_error="overloaded"))
        with pytest.raises(ModelError, match="mid-answer: error in stream: overloaded"):
            await collect(client, ask("hello"))
        await client.aclose()
        assert len(backup.received) == 1

    with_fakes(2, test)


def test_exhausted_fallbacks_raise_the_last_failure(tmp_path: Path) -> None:
    async def test(primary: FakeChat, backup: FakeChat, url: str, backup_url: str) -> None:
        primary.script.append(Failure(502))
        backup.script.append(Failure(429, "slow down"))
        client = ChatClient(two_routes(tmp_path, url, backup_url))
        with pytest.raises(ModelError) as raised:
            await collect(client, ask("hello"))
        await client.aclose()
        assert raised.value.code == "rate_limit_exceeded"
        assert "'backup'" in str(raised.value) and "429" in str(raised.value)
        assert "slow down" in str(raised.value)
        assert len(primary.received) == len(backup.received) == 1

    with_fakes(2, test)


def test_a_client_error_is_not_retried_elsewhere(tmp_path: Path) -> None:
    async def test(primary: FakeChat, backup: FakeChat, url: str, backup_url: str) -> None:
        primary.script.append(Failure(400, "messages: bad"))
        client = ChatClient(two_routes(tmp_path, url, backup_url))
        with pytest.raises(ModelError) as raised:
            await collect(client, ask("hello"))
        await client.aclose()
        assert raised.value.code == "server_error"
        assert "HTTP 400: messages: bad" in str(raised.value)
        assert not backup.received

    with_fakes(2, test)


def test_an_offline_fallback_answers_when_the_provider_is_down(tmp_path: Path) -> None:
    path = write_routes(
        tmp_path,
        f'[models."*"]\nbase_url = "{refused_url()}"\nfallbacks = ["spare"]\n'
        "[models.spare]\noffline = true\n",
    )
    client = ChatClient(load_routes(path, {}))
    events = asyncio.run(collect(client, ask("Are you there?")))
    assert finished(events).provider.route == "spare"
    assert finished(events).provider.host == "offline"
    assert "Are you there?" in text_of(events)


def test_keys_never_reach_errors_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def test(primary: FakeChat, backup: FakeChat, url: str, backup_url: str) -> None:
        # The primary expects another key and, like OpenAI, quotes the one it got.
        router = two_routes(tmp_path, url, backup_url)
        client = ChatClient(router)
        with caplog.at_level(logging.DEBUG), pytest.raises(ModelError) as raised:
            await collect(client, ask("hello"))
        await client.aclose()
        assert "Incorrect API key" in str(raised.value)
        shown = " ".join(
            [str(raised.value), repr(raised.value), caplog.text, repr(router.resolve("gpt-4o"))]
        )
        assert KEY not in shown and BACKUP_KEY not in shown
        assert "[redacted]" in str(raised.value)

    with_fakes(2, test, api_keys=("sk-something-else", "sk-another"))


# --- routing --------------------------------------------------------------------------------


def test_routing_by_exact_name_then_globs_in_file_order(tmp_path: Path) -> None:
    path = write_routes(
        tmp_path,
        """
[models."gpt-4o*"]
base_url = "http://first.example/v1"
[models."gpt-*"]
base_url = "http://second.example/v1/"
[models."gpt-4o-mini"]
base_url = "http://exact.example/v1"
model = "small"
connect_timeout = 2
read_timeout = 30
""",
    )
    router = load_routes(path, {})
    (exact,) = router.resolve("gpt-4o-mini")
    assert (exact.host, exact.model, exact.connect_timeout, exact.read_timeout) == (
        "exact.example", "small", 2.0, 30.0,
    )  # fmt: skip
    assert router.resolve("gpt-4o")[0].host == "first.example"
    (second,) = router.resolve("gpt-3.5-turbo")
    assert (second.base_url, second.model) == ("http://second.example/v1", "gpt-3.5-turbo")
    with pytest.raises(NoRouteError, match="claude"):
        router.resolve("claude-3")


def test_without_a_file_every_model_is_offline() -> None:
    router = router_from_env({})
    (target,) = router.resolve("anything-at-all")
    assert (target.route, target.base_url, target.host) == ("offline", None, "offline")
    events = asyncio.run(collect(ChatClient(router), ask("Hi there")))
    assert finished(events).provider.host == "offline"


def test_the_file_is_named_by_the_environment(tmp_path: Path) -> None:
    path = write_routes(tmp_path, '[models."*"]\nbase_url = "http://h.example/v1"\n')
    router = router_from_env({"PRISM_ENGINE_MODELS": str(path)})
    assert router.resolve("m")[0].host == "h.example"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[models.x\n", "not valid TOML"),
        ("[other]\na = 1\n", "unknown table 'other'"),
        ("[models.x]\noffline = true\ncolour = 'red'\n", 'models."x": unknown setting'),
        ('[models.x]\nbase_url = "ftp://h"\n', 'models."x": base_url must be'),
        ('[models."gpt*"]\nbase_url = "http://h"\nfallbacks = ["nope"]\n', "'nope' is not"),
        ('[models.x]\nbase_url = "http://h"\nread_timeout = 0\n', "read_timeout must be"),
        ('[models.x]\nbase_url = "http://h"\napi_key_env = "UNSET_VAR"\n', "is not set"),
        ('[models.x]\nbase_url = "http://h"\napi_key = "sk-live-SECRET"\n', "api_key_env"),
    ],
)
def test_config_errors_are_one_line_naming_file_and_entry(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write_routes(tmp_path, text)
    with pytest.raises(RoutingConfigError) as raised:
        router_from_env({"PRISM_ENGINE_MODELS": str(path)})
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "sk-live-SECRET" not in message


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RoutingConfigError, match=r"missing\.toml: cannot read"):
        router_from_env({"PRISM_ENGINE_MODELS": str(tmp_path / "missing.toml")})


# --- the offline model ----------------------------------------------------------------------


def offline(request: ChatRequest) -> list[ChatEvent]:
    return asyncio.run(collect(ChatClient(Router()), request))


def test_offline_replies_to_the_last_message_in_token_deltas() -> None:
    request = build_request(
        PromptInput(
            model="tutor",
            assistant_instructions="You are a tutor.",
            messages=[Message("user", "First question"), Message("assistant", "An answer")],
            additional_messages=[Message("user", "What is a prime number?")],
        )
    )
    events = offline(request)
    deltas = [event for event in events if isinstance(event, TextDelta)]
    assert len(deltas) > 5
    assert "What is a prime number?" in text_of(events)
    assert "First question" not in text_of(events)
    done = finished(events)
    assert done.finish_reason == "stop" and done.usage is not None
    assert done.usage.completion_tokens == len(deltas)
    assert done.usage.prompt_tokens > 0
    assert offline(request) == events  # deterministic, call ids and usage included


def test_offline_quotes_retrieved_chunks_and_names_the_file() -> None:
    chunks = [
        RetrievedChunk("file-1", "botany.md", "Photosynthesis turns light into sugar.", 3.2),
        RetrievedChunk("file-2", "notes.txt", "Chlorophyll is green.", 1.1),
    ]
    text = text_of(offline(ask("Explain photosynthesis", retrieved=chunks)))
    assert 'From botany.md: "Photosynthesis turns light into sugar."' in text
    assert "【0:0†botany.md】" in text and "【0:1†notes.txt】" in text
    assert text.index("botany.md") < text.index("notes.txt")


def test_offline_calls_the_function_the_message_asks_for() -> None:
    events = offline(ask("What's the weather in Paris today?", tools=[MULTIPLY, WEATHER]))
    (call,) = [event for event in events if isinstance(event, ToolCall)]
    assert call.name == "get_weather" and call.id.startswith("call_")
    assert json.loads(call.arguments) == {"city": "Paris", "unit": "celsius"}
    assert finished(events).finish_reason == "tool_calls"
    assert text_of(events) == ""

    events = offline(ask("Please multiply 6.5 by 4", tools=[WEATHER, MULTIPLY]))
    (call,) = [event for event in events if isinstance(event, ToolCall)]
    assert (call.name, json.loads(call.arguments)) == ("multiply", {"a": 6.5, "b": 4})


def test_offline_tool_choice_decides_whether_to_call() -> None:
    unrelated = "Tell me a joke"
    assert not any(isinstance(e, ToolCall) for e in offline(ask(unrelated, tools=[WEATHER])))
    asked = "What's the weather in Oslo?"
    none = offline(ask(asked, tools=[WEATHER], tool_choice="none"))
    assert not any(isinstance(e, ToolCall) for e in none)
    required = offline(ask(unrelated, tools=[WEATHER], tool_choice="required"))
    assert [e.name for e in required if isinstance(e, ToolCall)] == ["get_weather"]
    named = offline(ask(asked, tools=[WEATHER, MULTIPLY], tool_choice=NamedFunction("multiply")))
    assert [e.name for e in named if isinstance(e, ToolCall)] == ["multiply"]


def test_offline_answers_from_tool_outputs() -> None:
    turn = ToolTurn(
        calls=(ToolCall("call_1", "get_weather", '{"city": "Paris"}'),),
        outputs=(ToolOutput("call_1", "18°C and sunny"),),
    )
    events = offline(ask("What's the weather in Paris?", tools=[WEATHER], tool_turns=[turn]))
    assert not any(isinstance(e, ToolCall) for e in events)
    assert "get_weather returned 18°C and sunny" in text_of(events)
    assert finished(events).finish_reason == "stop"


def test_offline_json_response_formats_parse() -> None:
    answer = json.loads(text_of(offline(ask("hi", response_format={"type": "json_object"}))))
    assert answer == {"answer": 'You asked: "hi".'}
    schema = {
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "score": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "level": {"type": "string", "enum": ["low", "high"]},
            "extra": {"type": "string"},
        },
        "required": ["summary", "score", "tags", "level"],
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}
    value = json.loads(text_of(offline(ask("Rate this", response_format=response_format))))
    assert value == {"summary": 'You asked: "Rate this".', "score": 0, "tags": [], "level": "low"}


def test_offline_stops_at_max_completion_tokens() -> None:
    events = offline(ask("a b c d e f g h", max_completion_tokens=3))
    assert len([e for e in events if isinstance(e, TextDelta)]) == 3
    assert finished(events).finish_reason == "length"


# --- prompt assembly ------------------------------------------------------------------------


def test_instructions_run_override_and_additional() -> None:
    def system(**fields: Any) -> Any:
        request = build_request(PromptInput(model="m", messages=[Message("user", "x")], **fields))
        return [m["content"] for m in request.messages if m["role"] == "system"]

    assert system(assistant_instructions="Be brief.") == ["Be brief."]
    assert system(assistant_instructions="Be brief.", instructions="Be long.") == ["Be long."]
    assert system(assistant_instructions="Be brief.", additional_instructions="Use French.") == [
        "Be brief.\n\nUse French."
    ]
    assert system() == []


def test_truncation_last_messages_keeps_the_newest() -> None:
    history = [Message("user" if n % 2 == 0 else "assistant", f"message {n}") for n in range(6)]
    request = build_request(
        PromptInput(model="m", messages=history, truncation=Truncation("last_messages", 2))
    )
    assert [m["content"] for m in request.messages] == ["message 4", "message 5"]
    every = build_request(PromptInput(model="m", messages=history))
    assert len(every.messages) == 6
    with pytest.raises(ValueError, match="last_messages"):
        Truncation("last_messages")


def test_max_prompt_tokens_drops_the_oldest_messages() -> None:
    # "message N" is 2 tokens, plus 1 for the role.
    history = [Message("user", f"message {n}") for n in range(5)]
    request = build_request(PromptInput(model="m", messages=history, max_prompt_tokens=7))
    assert [m["content"] for m in request.messages] == ["message 3", "message 4"]
    with pytest.raises(PromptTooLongError) as raised:
        build_request(
            PromptInput(
                model="m",
                assistant_instructions="Some long instructions here",
                messages=history,
                max_prompt_tokens=6,
            )
        )
    assert raised.value.incomplete_reason == "max_prompt_tokens"
    assert "max_prompt_tokens 6" in str(raised.value)


def test_tool_turns_follow_the_history() -> None:
    turn = ToolTurn(
        calls=(ToolCall("call_1", "multiply", '{"a": 2, "b": 3}'),),
        outputs=(ToolOutput("call_1", "6"),),
        text="Let me compute.",
    )
    request = build_request(
        PromptInput(
            model="m", messages=[Message("user", "2*3?")], tools=[MULTIPLY], tool_turns=[turn]
        )
    )
    assert request.messages[1:] == (
        {
            "role": "assistant",
            "content": "Let me compute.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "multiply", "arguments": '{"a": 2, "b": 3}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "6"},
    )


def test_retrieved_chunks_are_given_to_real_models_with_citation_markers() -> None:
    chunk = RetrievedChunk("file-1", "guide.md", "Install with make.", 2.0)
    request = ask("How do I install?", retrieved=[chunk])
    excerpts = request.messages[-1]
    assert excerpts["role"] == "system"
    assert "【0:0†guide.md】\nInstall with make." in excerpts["content"]


def test_response_format_auto_and_text() -> None:
    assert ask("x", response_format="auto").wire_body("m").get("response_format") is None
    assert ask("x", response_format={"type": "text"}).response_format == {"type": "text"}
    with pytest.raises(ValueError, match="unsupported response_format"):
        ask("x", response_format={"type": "yaml"})
