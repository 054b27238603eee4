"""Every error the data plane makes itself, as the OpenAI SDK sees it: the right status and
exception, OpenAI's error body, the x-prism-* headers, never a traceback, and nothing
forwarded upstream when the gateway refused the request."""

import asyncio
import http.client
import json
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from tests.conftest import ControlPlane, DataPlane, IssueKey, Upstream
from tools import stack

ERROR_FIELDS = {"message", "type", "param", "code"}
MIB = 1024 * 1024


def assert_openai_error(
    error: openai.APIStatusError,
    status: int,
    code: str | None,
    *,
    provider: str = "prism",
) -> dict[str, str | None]:
    """Checks the status, the body's shape and the x-prism-* headers; returns the error."""
    response = error.response
    assert error.status_code == status
    assert "Traceback" not in response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_FIELDS
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert response.headers["x-prism-request-id"].startswith("req_")
    assert float(response.headers["x-prism-latency-ms"]) >= 0
    assert response.headers["x-prism-provider"] == provider
    if provider == "prism":
        assert float(response.headers["x-prism-upstream-latency-ms"]) == 0
    return body["error"]


def sdk(dataplane: DataPlane, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=dataplane.url, api_key=api_key, max_retries=0, timeout=30)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/nonexistent"),
        ("get", "/assistants/asst_1/unknown"),
        ("put", "/assistants"),
        ("post", "/threads/thread_1/runs/run_1/steps"),
        ("get", "/threads/runs/steps"),
    ],
)
def test_unknown_route_is_404_and_is_not_forwarded(
    client: openai.OpenAI, upstream: Upstream, method: str, path: str
) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        getattr(client, method)(path, cast_to=httpx.Response)

    error = assert_openai_error(raised.value, 404, "unknown_url")
    assert error["type"] == "invalid_request_error"
    assert error["message"] == f"Invalid URL ({method.upper()} /v1{path})"
    assert upstream.requests() == []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/threads/thread_1/messages/..",
        "/v1/threads/thread_1/messages/%2E%2E",
        "/v1/assistants/.",
    ],
)
def test_a_dot_segment_is_no_object_id(
    dataplane: DataPlane, issue_key: IssueKey, upstream: Upstream, path: str
) -> None:
    """A server resolving `..` would turn this deleteMessage into deleteThread upstream."""
    _, issued = issue_key()
    address = urlsplit(dataplane.base)
    # http.client sends the path as written; httpx and the SDK would resolve the dots first.
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.request("DELETE", path, headers={"authorization": f"Bearer {issued.secret}"})
    response = connection.getresponse()

    assert response.status == 404
    assert json.loads(response.read())["error"]["code"] == "unknown_url"
    assert upstream.requests() == []
    connection.close()


def test_an_id_with_dots_inside_is_forwarded(client: openai.OpenAI, upstream: Upstream) -> None:
    # The message is the path's second object: the thread, the caller's own, is what Check
    # verifies, so the request reaches the upstream.
    thread = client.beta.threads.create()
    upstream.clear_requests()

    with pytest.raises(openai.NotFoundError) as raised:
        client.beta.threads.messages.delete("msg_a..b", thread_id=thread.id)

    assert raised.value.response.headers["x-prism-provider"] != "prism"  # the upstream's 404
    assert [r["path"] for r in upstream.requests()] == [
        f"/v1/threads/{thread.id}/messages/msg_a..b"
    ]


def test_json_body_over_8_mib_is_413_and_is_not_forwarded(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    oversized = json.dumps({"model": "gpt-4o", "instructions": "x" * (8 * MIB)}).encode()

    with pytest.raises(openai.APIStatusError) as raised:
        client.post(
            "/assistants",
            cast_to=httpx.Response,
            content=oversized,
            options={"headers": {"content-type": "application/json"}},
        )

    error = assert_openai_error(raised.value, 413, "request_too_large")
    assert str(8 * MIB) in error["message"]
    assert upstream.requests() == []


def test_json_body_of_exactly_8_mib_is_forwarded(client: openai.OpenAI, upstream: Upstream) -> None:
    prefix, suffix = b'{"model": "gpt-4o", "instructions": "', b'"}'
    body = prefix + b"x" * (8 * MIB - len(prefix) - len(suffix)) + suffix

    with pytest.raises(openai.BadRequestError) as raised:
        client.post(
            "/assistants",
            cast_to=httpx.Response,
            content=body,
            options={"headers": {"content-type": "application/json"}},
        )

    # The upstream refused it (instructions are capped at 256,000 characters), not the gateway.
    assert raised.value.response.headers["x-prism-provider"] == urlsplit(upstream.url).netloc
    assert raised.value.body["code"] == "string_above_max_length"
    assert [r["body_bytes"] for r in upstream.requests()] == [8 * MIB]


def test_upload_declared_over_the_limit_is_413_and_nothing_is_forwarded(
    dataplane: DataPlane, issue_key: IssueKey, upstream: Upstream
) -> None:
    """The client announces 600 MiB but sends only the start of the body: the gateway
    answers from the Content-Length alone, without waiting for (or forwarding) the rest."""
    _, issued = issue_key()
    address = urlsplit(dataplane.base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.putrequest("POST", "/v1/files")
        connection.putheader("Authorization", f"Bearer {issued.secret}")
        connection.putheader("Content-Type", "multipart/form-data; boundary=prism")
        connection.putheader("Content-Length", str(600 * MIB))
        connection.endheaders(b'--prism\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n')
        response = connection.getresponse()
        status, headers, body = response.status, response.headers, json.loads(response.read())
    finally:
        connection.close()

    assert status == 413
    assert set(body["error"]) == ERROR_FIELDS
    assert body["error"]["code"] == "request_too_large"
    assert headers["x-prism-request-id"].startswith("req_")
    assert headers["x-prism-provider"] == "prism"
    assert upstream.requests() == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "Expecting property name"),
        (b'{"model": "gpt-4o",', "Expecting"),
        (b"[1, 2, 3]", "must be a JSON object"),
        (b'"gpt-4o"', "must be a JSON object"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_json_is_400_and_is_not_forwarded(
    client: openai.OpenAI, upstream: Upstream, body: bytes, reason: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.post(
            "/assistants",
            cast_to=httpx.Response,
            content=body,
            options={"headers": {"content-type": "application/json"}},
        )

    error = assert_openai_error(raised.value, 400, "invalid_json")
    assert error["type"] == "invalid_request_error"
    assert reason in error["message"]
    assert upstream.requests() == []


def test_model_that_is_not_a_string_is_400(client: openai.OpenAI, upstream: Upstream) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.post("/assistants", cast_to=httpx.Response, body={"model": ["gpt-4o"]})

    error = assert_openai_error(raised.value, 400, "invalid_json")
    assert error["param"] == "model"
    assert upstream.requests() == []


def test_missing_key_is_401_and_is_not_forwarded(dataplane: DataPlane, upstream: Upstream) -> None:
    client = sdk(dataplane, "unused")
    with pytest.raises(openai.AuthenticationError) as raised:
        client.beta.assistants.list(extra_headers={"Authorization": openai.Omit()})

    error = assert_openai_error(raised.value, 401, "missing_api_key")
    assert "Authorization: Bearer" in error["message"]
    assert upstream.requests() == []


def test_unknown_key_is_401_without_echoing_it(dataplane: DataPlane, upstream: Upstream) -> None:
    secret = "sk-prism-" + "A1b2C3d4" * 6
    with pytest.raises(openai.AuthenticationError) as raised:
        sdk(dataplane, secret).beta.assistants.list()

    error = assert_openai_error(raised.value, 401, "invalid_api_key")
    assert secret not in raised.value.response.text
    assert error["type"] == "invalid_request_error"
    assert upstream.requests() == []


def test_upload_refused_early_still_gets_its_error_while_the_client_sends(
    dataplane: DataPlane, upstream: Upstream, tmp_path: Path
) -> None:
    """Check refuses the key long before the client has sent its 256 MiB; the SDK, still
    uploading, must read the 401 rather than have its connection reset under it."""
    blob = tmp_path / "large.bin"
    with blob.open("wb") as sink:
        sink.truncate(256 * MIB)

    async def upload() -> None:
        async with openai.AsyncOpenAI(
            base_url=dataplane.url, api_key="sk-prism-" + "Z9" * 24, max_retries=0
        ) as client:
            with blob.open("rb") as source:
                await client.files.create(file=("large.bin", source), purpose="assistants")

    with pytest.raises(openai.AuthenticationError) as raised:
        asyncio.run(upload())

    assert_openai_error(raised.value, 401, "invalid_api_key")
    assert upstream.requests() == []


@pytest.fixture(scope="module")
def dead_upstream_dataplane(
    start_controlplane: Callable[..., ControlPlane],
    start_dataplane: Callable[..., DataPlane],
) -> tuple[DataPlane, str]:
    """A data plane whose control plane forwards to a port where nothing listens."""
    dead = f"127.0.0.1:{stack.free_port()}"
    controlplane = start_controlplane(PRISM_UPSTREAM_URL=f"http://{dead}/v1")
    return start_dataplane(controlplane.addr), dead


def test_unreachable_upstream_is_502(
    dead_upstream_dataplane: tuple[DataPlane, str], issue_key: IssueKey
) -> None:
    dataplane, dead = dead_upstream_dataplane
    _, issued = issue_key()

    with pytest.raises(openai.InternalServerError) as raised:
        sdk(dataplane, issued.secret).beta.assistants.list()

    error = assert_openai_error(raised.value, 502, "upstream_unreachable", provider=dead)
    assert error["type"] == "server_error"


@pytest.fixture(scope="module")
def impatient_dataplane(
    start_dataplane: Callable[..., DataPlane], controlplane: ControlPlane
) -> DataPlane:
    return start_dataplane(controlplane.addr, PRISM_UPSTREAM_TIMEOUT="1")


def test_upstream_slower_than_the_timeout_is_504(
    impatient_dataplane: DataPlane, issue_key: IssueKey, upstream: Upstream
) -> None:
    _, issued = issue_key()
    upstream.add_fault(method="GET", path="/v1/assistants", delay_ms=5000)
    provider = urlsplit(upstream.url).netloc

    with pytest.raises(openai.InternalServerError) as raised:
        sdk(impatient_dataplane, issued.secret).beta.assistants.list()

    error = assert_openai_error(raised.value, 504, "upstream_timeout", provider=provider)
    assert error["type"] == "server_error"
    assert float(raised.value.response.headers["x-prism-upstream-latency-ms"]) >= 1000
    assert [r["path"] for r in upstream.requests()] == ["/v1/assistants"]


@pytest.fixture(scope="module")
def orphan_dataplane(start_dataplane: Callable[..., DataPlane]) -> DataPlane:
    """A data plane whose control plane address has nothing listening."""
    return start_dataplane(f"127.0.0.1:{stack.free_port()}")


def test_control_plane_down_is_503_and_nothing_is_forwarded(
    orphan_dataplane: DataPlane, upstream: Upstream
) -> None:
    with pytest.raises(openai.InternalServerError) as raised:
        sdk(orphan_dataplane, "sk-prism-any").beta.assistants.create(model="gpt-4o")

    error = assert_openai_error(raised.value, 503, "control_plane_unavailable")
    assert error["type"] == "server_error"
    assert raised.value.response.headers["retry-after"] == "1"
    assert upstream.requests() == []


def test_readiness_names_the_control_plane_when_it_is_down(orphan_dataplane: DataPlane) -> None:
    response = httpx.get(f"{orphan_dataplane.base}/readyz")

    assert response.status_code == 503
    assert response.json()["down"] == ["control plane"]


def test_readiness_is_ok_with_the_whole_stack(dataplane: DataPlane) -> None:
    response = httpx.get(f"{dataplane.base}/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_readiness_names_redis_when_it_is_down(
    start_dataplane: Callable[..., DataPlane], controlplane: ControlPlane
) -> None:
    without_redis = start_dataplane(
        controlplane.addr, REDIS_URL=f"redis://127.0.0.1:{stack.free_port()}/0"
    )

    response = httpx.get(f"{without_redis.base}/readyz")

    assert response.status_code == 503
    assert response.json()["down"] == ["redis"]
    assert "redis" in response.json()["message"]


# Requests Hypercorn refuses before the app sees them


def _raw(dataplane: DataPlane, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Sends bytes as they are and reads the answer until the server closes."""
    address = urlsplit(dataplane.base)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (
            b"GET /v1/assistants HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
            431,
            "request_header_fields_too_large",
        ),
        (b"GET /v1/assistants HTTP/1.1\r\n\r\n", 400, "malformed_request"),
        (b"GET /v1/assist\xffants HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed_request"),
        (b"NOT HTTP AT ALL\r\n\r\n", 400, "malformed_request"),
        (
            b"POST /v1/threads HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
            400,
            "malformed_request",
        ),
        (
            b"POST /v1/threads HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            "malformed_request",
        ),
    ],
    ids=[
        "oversized-headers",
        "no-host",
        "raw-non-ascii-path",
        "no-request-line",
        "bad-content-length",
        "bad-chunk",
    ],
)
def test_a_request_that_is_not_http_gets_an_openai_error(
    dataplane: DataPlane, request_bytes: bytes, status: int, code: str
) -> None:
    got, headers, body = _raw(dataplane, request_bytes)

    assert got == status
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert set(error) == ERROR_FIELDS
    assert (error["type"], error["code"]) == ("invalid_request_error", code)
