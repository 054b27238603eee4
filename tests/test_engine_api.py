"""The engine's assistants, threads, messages and files operations, called with the official
OpenAI SDK pointed straight at the engine (and once through the gateway), every response
checked against the spec's schemas (spec/)."""

import asyncio
import hashlib
import json
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from engine.pagination import PageRequest
from engine.store import Store
from prism import redis_client
from tests.conftest import (
    DataPlane,
    Engine,
    IssueKey,
    assert_one_clear_line,
    start_and_fail,
)
from tests.openapi_schemas import validate


def checked(schema: str, raw: Any) -> dict[str, Any]:
    """The JSON body of an SDK raw response, validated as the spec's `schema`."""
    body = raw.http_response.json()
    if body.get("object") == "list" and not body["data"]:
        # OpenAI answers an empty page with null first_id and last_id, which the spec's
        # list schemas (strings) do not allow; the engine answers as OpenAI does.
        assert body["first_id"] is None and body["last_id"] is None
        return body
    validate(schema, body)
    return body


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


# Assistants


def test_assistant_create_retrieve_modify_list_delete(engine_client: openai.OpenAI) -> None:
    raw = engine_client.beta.assistants.with_raw_response.create(
        model="gpt-4o",
        name="Tutor",
        instructions="You are a math tutor.",
        tools=[
            {"type": "code_interpreter"},
            {"type": "file_search"},
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather in a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            },
        ],
        metadata={"team": "maths"},
        temperature=0.5,
        response_format={"type": "json_object"},
    )
    created = checked("AssistantObject", raw)
    assert created["id"].startswith("asst_") and len(created["id"]) == 5 + 24
    assert created["object"] == "assistant"
    assert created["model"] == "gpt-4o" and created["name"] == "Tutor"
    assert created["description"] is None
    assert [t["type"] for t in created["tools"]] == ["code_interpreter", "file_search", "function"]
    assert created["tools"][2]["function"]["name"] == "get_weather"
    assert created["metadata"] == {"team": "maths"}
    assert created["temperature"] == 0.5 and created["top_p"] == 1.0
    assert created["response_format"] == {"type": "json_object"}

    fetched = checked(
        "AssistantObject", engine_client.beta.assistants.with_raw_response.retrieve(created["id"])
    )
    assert fetched == created

    modified = checked(
        "AssistantObject",
        engine_client.beta.assistants.with_raw_response.update(
            created["id"], name="Senior tutor", metadata={"team": "physics"}, tools=[]
        ),
    )
    assert modified["name"] == "Senior tutor"
    assert modified["metadata"] == {"team": "physics"}
    assert modified["tools"] == []
    # What the update did not name is kept.
    assert modified["instructions"] == "You are a math tutor."
    assert modified["temperature"] == 0.5
    assert engine_client.beta.assistants.retrieve(created["id"]).name == "Senior tutor"

    listed = checked(
        "ListAssistantsResponse", engine_client.beta.assistants.with_raw_response.list()
    )
    assert listed["data"][0]["id"] == created["id"]  # newest first

    deleted = checked(
        "DeleteAssistantResponse",
        engine_client.beta.assistants.with_raw_response.delete(created["id"]),
    )
    assert deleted == {"id": created["id"], "object": "assistant.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError) as caught:
        engine_client.beta.assistants.retrieve(created["id"])
    assert caught.value.body["message"] == f"No assistant found with id '{created['id']}'."
    with pytest.raises(openai.NotFoundError):
        engine_client.beta.assistants.delete(created["id"])
    assert created["id"] not in [a.id for a in engine_client.beta.assistants.list(limit=100)]


def test_assistant_keeps_reasoning_effort_for_runs_but_answers_the_spec_object(
    engine_client: openai.OpenAI, redis_url: str
) -> None:
    raw = engine_client.beta.assistants.with_raw_response.create(
        model="o3-mini", reasoning_effort="low"
    )
    answered = checked("AssistantObject", raw)
    assert "reasoning_effort" not in answered

    async def record() -> dict[str, Any] | None:
        redis = redis_client.async_client(redis_url, decode_responses=True)
        found = await Store(redis, Path(".")).get_assistant(answered["id"])
        await redis.aclose()
        return found

    stored = asyncio.run(record())
    assert stored is not None and stored["reasoning_effort"] == "low"


def test_an_id_of_another_kind_is_not_found(engine_client: openai.OpenAI) -> None:
    file = engine_client.files.create(file=("a.txt", b"a"), purpose="assistants")
    with pytest.raises(openai.NotFoundError) as caught:
        engine_client.beta.assistants.retrieve(file.id)
    assert caught.value.body["message"] == f"No assistant found with id '{file.id}'."


# Threads and messages


def test_thread_with_messages_and_tool_resources(engine_client: openai.OpenAI) -> None:
    file = engine_client.files.create(file=("notes.txt", b"notes"), purpose="assistants")
    raw = engine_client.beta.threads.with_raw_response.create(
        messages=[
            {"role": "user", "content": "Solve 3x + 11 = 14", "metadata": {"n": "1"}},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "x = 1"}],
                "attachments": [{"file_id": file.id, "tools": [{"type": "file_search"}]}],
            },
        ],
        tool_resources={"code_interpreter": {"file_ids": [file.id]}},
        metadata={"course": "algebra"},
    )
    thread = checked("ThreadObject", raw)
    assert thread["id"].startswith("thread_")
    assert thread["tool_resources"] == {"code_interpreter": {"file_ids": [file.id]}}
    assert thread["metadata"] == {"course": "algebra"}

    listed = checked(
        "ListMessagesResponse",
        engine_client.beta.threads.messages.with_raw_response.list(thread["id"], order="asc"),
    )
    first, second = listed["data"]
    assert first["id"].startswith("msg_") and first["thread_id"] == thread["id"]
    assert first["role"] == "user" and first["status"] == "completed"
    assert first["content"] == [
        {"type": "text", "text": {"value": "Solve 3x + 11 = 14", "annotations": []}}
    ]
    assert first["metadata"] == {"n": "1"}
    assert first["assistant_id"] is None and first["run_id"] is None
    assert second["role"] == "assistant"
    assert second["content"][0]["text"]["value"] == "x = 1"
    assert second["attachments"] == [{"file_id": file.id, "tools": [{"type": "file_search"}]}]

    modified = checked(
        "ThreadObject",
        engine_client.beta.threads.with_raw_response.update(
            thread["id"], metadata={"course": "geometry"}
        ),
    )
    assert modified["metadata"] == {"course": "geometry"}
    assert modified["tool_resources"] == thread["tool_resources"]
    assert engine_client.beta.threads.retrieve(thread["id"]).metadata == {"course": "geometry"}

    deleted = checked(
        "DeleteThreadResponse", engine_client.beta.threads.with_raw_response.delete(thread["id"])
    )
    assert deleted == {"id": thread["id"], "object": "thread.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError) as caught:
        engine_client.beta.threads.retrieve(thread["id"])
    assert caught.value.body["message"] == f"No thread found with id '{thread['id']}'."
    with pytest.raises(openai.NotFoundError):
        engine_client.beta.threads.messages.retrieve(first["id"], thread_id=thread["id"])


def test_message_create_retrieve_modify_delete(engine_client: openai.OpenAI) -> None:
    thread = engine_client.beta.threads.create()
    created = checked(
        "MessageObject",
        engine_client.beta.threads.messages.with_raw_response.create(
            thread.id,
            role="user",
            content=[
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
        ),
    )
    assert created["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "https://example.com/a.png"},
    }
    fetched = checked(
        "MessageObject",
        engine_client.beta.threads.messages.with_raw_response.retrieve(
            created["id"], thread_id=thread.id
        ),
    )
    assert fetched == created
    modified = checked(
        "MessageObject",
        engine_client.beta.threads.messages.with_raw_response.update(
            created["id"], thread_id=thread.id, metadata={"seen": "yes"}
        ),
    )
    assert modified["metadata"] == {"seen": "yes"}
    deleted = checked(
        "DeleteMessageResponse",
        engine_client.beta.threads.messages.with_raw_response.delete(
            created["id"], thread_id=thread.id
        ),
    )
    assert deleted == {"id": created["id"], "object": "thread.message.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError) as caught:
        engine_client.beta.threads.messages.retrieve(created["id"], thread_id=thread.id)
    assert caught.value.body["message"] == f"No message found with id '{created['id']}'."
    assert engine_client.beta.threads.messages.list(thread.id).data == []
    with pytest.raises(openai.NotFoundError) as caught:
        engine_client.beta.threads.messages.create("thread_missing", role="user", content="hi")
    assert caught.value.body["message"] == "No thread found with id 'thread_missing'."


def test_messages_list_filtered_by_run(
    engine_client: openai.OpenAI, engine: Engine, redis_url: str, tmp_path: Path
) -> None:
    """Runs come next; their messages are written by the worker through the same store."""
    thread = engine_client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    reply = {
        "id": "msg_" + secrets.token_hex(12),
        "object": "thread.message",
        "created_at": 1,
        "thread_id": thread.id,
        "status": "completed",
        "incomplete_details": None,
        "completed_at": 1,
        "incomplete_at": None,
        "role": "assistant",
        "content": [{"type": "text", "text": {"value": "Hello", "annotations": []}}],
        "assistant_id": "asst_x",
        "run_id": "run_x",
        "attachments": [],
        "metadata": {},
    }

    async def add() -> None:
        redis = redis_client.async_client(redis_url, decode_responses=True)
        await Store(redis, tmp_path).add_message(reply)
        await redis.aclose()

    asyncio.run(add())
    by_run = engine_client.beta.threads.messages.list(thread.id, run_id="run_x")
    assert [m.id for m in by_run.data] == [reply["id"]]
    assert len(engine_client.beta.threads.messages.list(thread.id).data) == 2
    assert engine_client.beta.threads.messages.list(thread.id, run_id="run_other").data == []


def test_store_gives_a_thread_messages_in_order(
    engine_client: openai.OpenAI, redis_url: str
) -> None:
    thread = engine_client.beta.threads.create(
        messages=[{"role": "user", "content": str(n)} for n in range(3)]
    )
    engine_client.beta.threads.messages.create(thread.id, role="user", content="3")

    async def read() -> list[dict[str, Any]]:
        redis = redis_client.async_client(redis_url, decode_responses=True)
        store = Store(redis, Path("."))
        messages = await store.thread_messages(thread.id)
        page, more = await store.list_messages(thread.id, PageRequest(2, "asc", None, None))
        await redis.aclose()
        assert [m["content"][0]["text"]["value"] for m in page] == ["0", "1"] and more
        return messages

    assert [m["content"][0]["text"]["value"] for m in asyncio.run(read())] == list("0123")


# Pagination


def test_pagination_with_cursors_in_both_orders(engine_client: openai.OpenAI) -> None:
    thread = engine_client.beta.threads.create()
    ids = [
        engine_client.beta.threads.messages.create(thread.id, role="user", content=str(n)).id
        for n in range(7)
    ]
    newest_first = ids[::-1]

    def page(**params: Any) -> dict[str, Any]:
        raw = engine_client.beta.threads.messages.with_raw_response.list(thread.id, **params)
        return checked("ListMessagesResponse", raw)

    def listed(body: dict[str, Any]) -> list[str]:
        return [m["id"] for m in body["data"]]

    first = page(limit=3)
    assert listed(first) == newest_first[:3]
    assert first["has_more"] is True
    assert (first["first_id"], first["last_id"]) == (newest_first[0], newest_first[2])
    second = page(limit=3, after=first["last_id"])
    assert listed(second) == newest_first[3:6] and second["has_more"] is True
    third = page(limit=3, after=second["last_id"])
    assert listed(third) == newest_first[6:] and third["has_more"] is False
    # `before` walks back: the page just before the second is the first.
    back = page(limit=3, before=second["first_id"])
    assert listed(back) == newest_first[:3]
    assert page(limit=3, before=newest_first[0])["data"] == []

    ascending = page(limit=4, order="asc")
    assert listed(ascending) == ids[:4] and ascending["has_more"] is True
    rest = page(limit=4, order="asc", after=ascending["last_id"])
    assert listed(rest) == ids[4:] and rest["has_more"] is False
    assert listed(page(order="asc", after=ids[1], before=ids[5])) == ids[2:5]

    # The SDK's auto-pagination walks every page with `after`.
    walked = [m.id for m in engine_client.beta.threads.messages.list(thread.id, limit=2)]
    assert walked == newest_first


@pytest.mark.parametrize(
    ("params", "param", "says"),
    [
        ({"limit": "0"}, "limit", "between 1 and 100"),
        ({"limit": "101"}, "limit", "between 1 and 100"),
        ({"limit": "many"}, "limit", "between 1 and 100"),
        ({"order": "sideways"}, "order", "'asc', 'desc'"),
        ({"after": "asst_nope"}, "after", "asst_nope"),
        ({"before": "asst_nope"}, "before", "asst_nope"),
    ],
)
def test_invalid_list_parameters_are_400(
    engine_http: httpx.Client, params: dict[str, str], param: str, says: str
) -> None:
    response = engine_http.get("/v1/assistants", params=params)
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert says in error["message"]


# Validation, authentication, unknown routes


@pytest.mark.parametrize(
    ("path", "body", "param", "code"),
    [
        ("/v1/assistants", {}, "model", "missing_required_parameter"),
        ("/v1/assistants", {"model": 4}, "model", "invalid_type"),
        ("/v1/assistants", {"model": "m", "colour": "red"}, "colour", "unknown_parameter"),
        ("/v1/assistants", {"model": "m", "temperature": 3}, "temperature", "invalid_value"),
        ("/v1/assistants", {"model": "m", "name": "n" * 257}, "name", "string_above_max_length"),
        ("/v1/assistants", {"model": "m", "tools": [{"type": "web"}]}, "tools[0].type", None),
        (
            "/v1/assistants",
            {"model": "m", "metadata": {f"k{i}": "v" for i in range(17)}},
            "metadata",
            "object_above_max_properties",
        ),
        ("/v1/assistants", {"model": "m", "metadata": {"k" * 65: "v"}}, "metadata", None),
        (
            "/v1/assistants",
            {"model": "m", "metadata": {"k": "v" * 513}},
            "metadata.k",
            "string_above_max_length",
        ),
        ("/v1/threads", {"messages": [{"role": "user"}]}, "messages[0].content", None),
        (
            "/v1/threads",
            {"messages": [{"role": "robot", "content": "hi"}]},
            "messages[0].role",
            "invalid_value",
        ),
        (
            "/v1/threads",
            {"tool_resources": {"file_search": {"vector_store_ids": ["vs_a", "vs_b"]}}},
            "tool_resources.file_search.vector_store_ids",
            "array_above_max_length",
        ),
    ],
)
def test_invalid_bodies_are_400_naming_the_param(
    engine_http: httpx.Client, path: str, body: dict[str, Any], param: str, code: str | None
) -> None:
    response = engine_http.post(path, json=body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert param in error["message"] or "Invalid value" in error["message"]
    if code is not None:
        assert error["code"] == code


def test_sdk_raises_bad_request_for_a_validation_error(engine_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        engine_client.beta.assistants.create(model="gpt-4o", metadata={"k": "v" * 513})
    assert caught.value.param == "metadata.k"


def test_malformed_json_is_400(engine_http: httpx.Client) -> None:
    response = engine_http.post(
        "/v1/assistants", content=b'{"model": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_json"
    assert "could not parse the JSON body" in error["message"]


def test_json_body_over_8_mib_is_413_even_when_chunked(engine_http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "m", "instructions": "'
        for _ in range(9):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    response = engine_http.post(
        "/v1/assistants", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"


def test_wrong_or_missing_key_is_401(engine: Engine) -> None:
    with (
        openai.OpenAI(base_url=engine.url + "/v1", api_key="sk-wrong", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        sdk.beta.assistants.list()
    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong" not in caught.value.body["message"]
    response = httpx.get(engine.url + "/v1/assistants")
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "invalid_api_key"
    assert "You didn't provide an API key" in error["message"]
    log = engine.process.log()
    assert engine.api_key not in log and "sk-wrong" not in log


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nothing"),
        ("DELETE", "/v1/threads/thread_abc/runs/run_abc"),
        ("GET", "/v1/vector_stores/vs_abc/files/file-abc/chunks"),
        ("PUT", "/v1/assistants"),
        ("GET", "/v1/assistants/"),
    ],
)
def test_unregistered_routes_are_404_unknown_url(
    engine_http: httpx.Client, method: str, path: str
) -> None:
    response = engine_http.request(method, path, json={})
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "unknown_url"
    assert error["message"] == f"Invalid URL ({method} {path})"


# Files


def test_file_upload_and_download_byte_identical(engine_client: openai.OpenAI) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17)
    raw = engine_client.files.with_raw_response.create(
        file=("blob.bin", data), purpose="assistants"
    )
    file = checked("OpenAIFile", raw)
    assert file["id"].startswith("file-")
    assert file["bytes"] == len(data) and file["filename"] == "blob.bin"
    assert file["purpose"] == "assistants" and file["status"] == "processed"
    assert checked("OpenAIFile", engine_client.files.with_raw_response.retrieve(file["id"])) == file

    digest = hashlib.sha256()
    received = 0
    with engine_client.files.with_streaming_response.content(file["id"]) as download:
        assert download.headers["content-length"] == str(len(data))
        for chunk in download.iter_bytes():
            digest.update(chunk)
            received += len(chunk)
    assert received == len(data)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()

    deleted = checked(
        "DeleteFileResponse", engine_client.files.with_raw_response.delete(file["id"])
    )
    assert deleted == {"id": file["id"], "object": "file", "deleted": True}
    with pytest.raises(openai.NotFoundError) as caught:
        engine_client.files.retrieve(file["id"])
    assert caught.value.body["message"] == f"No such File object: {file['id']}"
    with pytest.raises(openai.NotFoundError):
        engine_client.files.content(file["id"])


def _peak_memory_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def test_a_large_file_streams_through_without_being_held(
    engine: Engine, engine_http: httpx.Client
) -> None:
    """64 MiB up and down: the engine's peak memory grows by far less than the file."""
    size, block = 64 * 1024 * 1024, os.urandom(1024 * 1024)
    before = _peak_memory_mib(engine.process.pid)

    def body() -> Iterator[bytes]:
        yield (
            b'--xyz\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
            b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n"
        )
        for _ in range(size // len(block)):
            yield block
        yield b"\r\n--xyz--\r\n"

    response = engine_http.post(
        "/v1/files",
        content=body(),
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    file = response.json()
    assert file["bytes"] == size
    expected, received = hashlib.sha256(), hashlib.sha256()
    for _ in range(size // len(block)):
        expected.update(block)
    with engine_http.stream("GET", f"/v1/files/{file['id']}/content", timeout=120) as download:
        for chunk in download.iter_bytes():
            received.update(chunk)
    assert received.hexdigest() == expected.hexdigest()
    assert _peak_memory_mib(engine.process.pid) - before < 32
    engine_http.delete(f"/v1/files/{file['id']}")


def test_file_list_filters_by_purpose(engine_client: openai.OpenAI) -> None:
    mine = engine_client.files.create(file=("a.jsonl", b"{}\n"), purpose="batch")
    other = engine_client.files.create(file=("b.txt", b"b"), purpose="user_data")
    listed = checked(
        "ListFilesResponse", engine_client.files.with_raw_response.list(purpose="batch")
    )
    ids = [f["id"] for f in listed["data"]]
    assert mine.id in ids and other.id not in ids
    assert all(f["purpose"] == "batch" for f in listed["data"])
    assert other.id in [f.id for f in engine_client.files.list()]
    two = engine_client.files.list(limit=2)
    assert [f.id for f in two.data] == [other.id, mine.id] and two.has_more


def test_file_purpose_is_validated(engine_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        engine_client.files.create(file=("a.txt", b"a"), purpose="homework")  # type: ignore[arg-type]
    assert caught.value.param == "purpose"
    assert "homework" in caught.value.body["message"]


def test_file_over_512_mb_is_413_before_it_is_read(engine: Engine) -> None:
    host, port = engine.url.removeprefix("http://").split(":")
    head = (
        "POST /v1/files HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        f"Authorization: Bearer {engine.api_key}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        f"Content-Length: {513 * 1024 * 1024 + 1}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413")


# Settings


def test_missing_api_key_stops_the_start_with_one_line() -> None:
    result = start_and_fail("engine", {"PRISM_ENGINE_LISTEN": "127.0.0.1:1"})
    assert_one_clear_line(result, "engine", 2, "PRISM_ENGINE_API_KEY is not set")


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("PRISM_ENGINE_LISTEN", "nowhere"),
        ("PRISM_ENGINE_REDIS_URL", "http://127.0.0.1:6379"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("PRISM_ENGINE_DATA_DIR", "{file}/data"),
    ],
)
def test_a_bad_setting_stops_the_start_with_one_line(
    setting: str, value: str, tmp_path: Path
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    settings = {"PRISM_ENGINE_API_KEY": "k", setting: value.format(file=a_file)}
    result = start_and_fail("engine", settings)
    assert_one_clear_line(result, "engine", 2, setting)


def test_a_taken_port_stops_the_start_with_one_line(engine: Engine) -> None:
    listen = engine.url.removeprefix("http://")
    result = start_and_fail("engine", {"PRISM_ENGINE_LISTEN": listen, "PRISM_ENGINE_API_KEY": "k"})
    assert_one_clear_line(result, "engine", 1, "cannot listen")


# Through the gateway


def test_gateway_forwards_to_the_engine(engine_gateway: DataPlane, issue_key: IssueKey) -> None:
    _, issued = issue_key()
    with openai.OpenAI(base_url=engine_gateway.url, api_key=issued.secret, max_retries=0) as sdk:
        tutor = sdk.beta.assistants.create(model="gpt-4o", instructions="You are a tutor.")
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Hi there"}])
        assert sdk.beta.assistants.retrieve(tutor.id).instructions == "You are a tutor."
        assert tutor.id in [a.id for a in sdk.beta.assistants.list()]
        messages = sdk.beta.threads.messages.list(thread.id).data
        assert [m.content[0].text.value for m in messages] == ["Hi there"]  # type: ignore[union-attr]


def test_error_bodies_are_the_shared_shape() -> None:
    from prism.openai_errors import error_body

    assert json.loads(json.dumps(error_body("m", "t", "c", "p"))) == {
        "error": {"message": "m", "type": "t", "param": "p", "code": "c"}
    }
