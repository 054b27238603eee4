"""The request log, through the OpenAI SDK and Admin: one entry per request whoever answered
it, with the request id the response carried; the trace id and metadata headers; bodies by
the org's policy, always redacted; ListRequestLogs' filters and pages and GetRequestLog;
retention by count and by age; no entry lost while Redis briefly refuses writes; one JSON
line per request on the data plane's stdout."""

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import pytest
import redis
from google.protobuf import field_mask_pb2, json_format, timestamp_pb2

from prism import redis_keys
from prism.v1 import admin_pb2, request_logging_pb2
from tests.conftest import (
    DATAPLANE_TOKEN,
    AdminClient,
    ControlPlane,
    DataPlane,
    IssueKey,
    Sdk,
    Upstream,
    assert_one_clear_line,
    start_and_fail,
)
from tools import stack

# Bounds a wait for the log writer, which writes off the response path.
PATIENCE_SECONDS = 15
FULL = request_logging_pb2.BODY_LOGGING_FULL
METADATA = request_logging_pb2.BODY_LOGGING_METADATA


def logged(admin: AdminClient, *request_ids: str) -> list[admin_pb2.RequestLog]:
    """The entries of these requests, once the writer has written them all."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    found: dict[str, admin_pb2.RequestLog] = {}
    while True:
        for request_id in request_ids:
            if request_id in found:
                continue
            try:
                found[request_id] = admin.GetRequestLog(
                    admin_pb2.GetRequestLogRequest(request_id=request_id)
                )
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.NOT_FOUND, error
        if len(found) == len(request_ids):
            return [found[request_id] for request_id in request_ids]
        assert time.monotonic() < deadline, f"not logged: {set(request_ids) - set(found)}"
        time.sleep(0.05)


def org_logs(admin: AdminClient, **filters: Any) -> list[admin_pb2.RequestLog]:
    """Every entry the filters match, page after page."""
    entries: list[admin_pb2.RequestLog] = []
    token = ""
    while True:
        page = admin.ListRequestLogs(
            admin_pb2.ListRequestLogsRequest(page_token=token, page_size=1000, **filters)
        )
        entries += page.logs
        token = page.next_page_token
        if not token:
            return entries


def request_id_of(error: openai.APIStatusError) -> str:
    return error.response.headers["x-prism-request-id"]


def set_logging(admin: AdminClient, org_id: str, bodies: int, max_body_bytes: int = 0) -> None:
    admin.UpdateOrg(
        admin_pb2.UpdateOrgRequest(
            org=admin_pb2.Org(
                id=org_id,
                request_logging=request_logging_pb2.RequestLogging(
                    bodies=bodies, max_body_bytes=max_body_bytes
                ),
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["request_logging"]),
        )
    )


def test_a_workload_logs_one_entry_per_request_with_the_ids_responses_carried(
    admin: AdminClient, issue_key: IssueKey, sdk: Sdk, upstream: Upstream
) -> None:
    org, issued = issue_key(allowed_models=["gpt-4o"])
    client = sdk(issued.secret)
    sent: dict[str, tuple[int, str]] = {}

    created = client.beta.assistants.with_raw_response.create(model="gpt-4o")
    assistant = created.parse()
    sent[created.headers["x-prism-request-id"]] = (200, "POST /v1/assistants")
    thread = client.beta.threads.with_raw_response.create(
        messages=[{"role": "user", "content": "Hello?"}]
    )
    sent[thread.headers["x-prism-request-id"]] = (200, "POST /v1/threads")
    with client.beta.threads.runs.with_streaming_response.create(
        thread_id=thread.parse().id, assistant_id=assistant.id, stream=True
    ) as stream:
        events = list(stream.parse())
        sent[stream.headers["x-prism-request-id"]] = (200, "POST /v1/threads/{thread_id}/runs")
    assert events[-1].event == "thread.run.completed"
    uploaded = client.files.with_raw_response.create(
        file=("notes.txt", b"some notes\n" * 100), purpose="assistants"
    )
    sent[uploaded.headers["x-prism-request-id"]] = (200, "POST /v1/files")
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.beta.assistants.create(model="gpt-4")
    sent[request_id_of(denied.value)] = (403, "POST /v1/assistants")
    upstream.add_fault(method="GET", path="/v1/assistants", status=500)
    with pytest.raises(openai.InternalServerError) as failed:
        client.beta.assistants.list()
    sent[request_id_of(failed.value)] = (500, "GET /v1/assistants")
    with pytest.raises(openai.NotFoundError) as unknown:
        client.get("/no/such/thing", cast_to=object)
    unknown_id = request_id_of(unknown.value)

    logged(admin, *sent, unknown_id)
    entries = org_logs(admin, org_id=org.id)
    assert sorted(entry.request_id for entry in entries) == sorted(sent)
    for entry in entries:
        assert (entry.status, entry.route) == sent[entry.request_id]
        assert (entry.org_id, entry.key_id) == (org.id, issued.key.id)
        assert entry.key_display_prefix == issued.key.display_prefix
        assert entry.client_ip == "127.0.0.1"
        assert entry.latency_ms >= entry.upstream_latency_ms >= 0
        assert re.fullmatch(r"[0-9a-f]{32}", entry.trace_id)
    # Newest first.
    assert [entry.time.ToDatetime() for entry in entries] == sorted(
        (entry.time.ToDatetime() for entry in entries), reverse=True
    )
    by_id = {entry.request_id: entry for entry in entries}
    denial = by_id[request_id_of(denied.value)]
    assert denial.error_code == denied.value.code
    assert denial.error_type == denied.value.type
    assert denial.model == "gpt-4"
    assert denial.upstream_latency_ms == 0
    upstream_error = by_id[request_id_of(failed.value)]
    assert upstream_error.error_type == failed.value.type != ""
    assert upstream_error.upstream_latency_ms > 0
    assert by_id[created.headers["x-prism-request-id"]].model == "gpt-4o"
    assert not by_id[created.headers["x-prism-request-id"]].error_type
    # Answered before any key was looked at: no org, no route.
    (not_served,) = logged(admin, unknown_id)
    assert (not_served.status, not_served.route, not_served.org_id) == (404, "", "")
    assert not_served.path == "/v1/no/such/thing"
    assert not_served.error_code == "unknown_url"


def test_the_trace_id_is_echoed_or_generated_and_never_forwarded(
    admin: AdminClient, client: openai.OpenAI, upstream: Upstream
) -> None:
    mine = client.beta.assistants.with_raw_response.list(
        extra_headers={"x-prism-trace-id": "checkout-7f3a/step 2"}
    )
    generated = client.beta.assistants.with_raw_response.list()

    assert mine.headers["x-prism-trace-id"] == "checkout-7f3a/step 2"
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-prism-trace-id"])
    first, second = logged(
        admin, mine.headers["x-prism-request-id"], generated.headers["x-prism-request-id"]
    )
    assert first.trace_id == "checkout-7f3a/step 2"
    assert second.trace_id == generated.headers["x-prism-trace-id"]
    for forwarded in upstream.requests():
        assert not any(name.startswith("x-prism-") for name in forwarded["headers"])


@pytest.mark.parametrize(
    "trace_id",
    [b"t" * 129, "caf\u00e9".encode(), b"tab\there", b""],
    ids=["too-long", "not-ascii", "control", "empty"],
)
def test_a_malformed_trace_id_is_refused(
    dataplane: DataPlane, issue_key: IssueKey, trace_id: bytes
) -> None:
    # Raw HTTP: the SDK refuses to send a header that is not ASCII.
    _, issued = issue_key()
    refused = httpx.get(
        dataplane.url + "/assistants",
        headers={"authorization": f"Bearer {issued.secret}", "x-prism-trace-id": trace_id},
    )
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["param"], error["type"]) == ("x-prism-trace-id", "invalid_request_error")


def test_metadata_is_logged_redacted(admin: AdminClient, client: openai.OpenAI) -> None:
    metadata = {"team": "search", "ticket": 42, "api_key": "hunter2-long-secret"}
    response = client.beta.assistants.with_raw_response.list(
        extra_headers={"x-prism-metadata": json.dumps(metadata)}
    )

    (entry,) = logged(admin, response.headers["x-prism-request-id"])
    assert dict(entry.metadata) == {"team": "search", "ticket": 42, "api_key": "[REDACTED]"}


@pytest.mark.parametrize(
    "metadata",
    ["not json", "[1, 2]", '"text"', json.dumps({"pad": "x" * 4096})],
    ids=["not-json", "array", "string", "too-large"],
)
def test_malformed_metadata_is_refused(
    admin: AdminClient, client: openai.OpenAI, metadata: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.assistants.list(extra_headers={"x-prism-metadata": metadata})
    assert refused.value.param == "x-prism-metadata"
    # Refused, and logged as such.
    (entry,) = logged(admin, request_id_of(refused.value))
    assert (entry.status, entry.error_code) == (400, "invalid_header")
    assert entry.route == "GET /v1/assistants"


def test_bodies_are_not_logged_by_default(
    admin: AdminClient, issue_key: IssueKey, sdk: Sdk
) -> None:
    org, issued = issue_key()
    assert admin.GetOrg(admin_pb2.GetOrgRequest(id=org.id)).request_logging.bodies == 0
    created = sdk(issued.secret).beta.assistants.with_raw_response.create(model="gpt-4o")

    (entry,) = logged(admin, created.headers["x-prism-request-id"])
    assert not entry.HasField("request_body")
    assert not entry.HasField("response_body")


def test_metadata_logging_keeps_content_types_sizes_and_ids(
    admin: AdminClient, issue_key: IssueKey, sdk: Sdk
) -> None:
    org, issued = issue_key()
    set_logging(admin, org.id, METADATA)
    client = sdk(issued.secret)
    created = client.beta.assistants.with_raw_response.create(
        model="gpt-4o", instructions="Say sk-proj-abcdefghijklmnop0123"
    )
    assistant = created.parse()
    uploaded = client.files.with_raw_response.create(
        file=("notes.txt", b"x" * 3000), purpose="assistants"
    )

    entry, upload = logged(
        admin, created.headers["x-prism-request-id"], uploaded.headers["x-prism-request-id"]
    )
    assert entry.request_body.content_type == "application/json"
    assert entry.request_body.size_bytes > 0
    assert entry.response_body.content_type.startswith("application/json")
    assert entry.response_body.size_bytes == len(created.content)
    assert assistant.id in entry.response_body.ids
    assert not entry.request_body.text and not entry.response_body.text
    assert upload.request_body.content_type.startswith("multipart/form-data")
    assert upload.request_body.size_bytes > 3000
    assert uploaded.parse().id in upload.response_body.ids


def test_full_logging_keeps_redacted_text_up_to_the_cap(
    admin: AdminClient,
    issue_key: IssueKey,
    sdk: Sdk,
) -> None:
    org, issued = issue_key()
    set_logging(admin, org.id, FULL)
    client = sdk(issued.secret)
    key_like = "sk-proj-" + "A1b2C3d4" * 4
    created = client.beta.assistants.with_raw_response.create(
        model="gpt-4o",
        instructions=f"Use {key_like} and Bearer abc.def.ghi, or {issued.secret}.",
        metadata={"password": "correct horse", "note": "kept"},
    )

    (entry,) = logged(admin, created.headers["x-prism-request-id"])
    request_text = entry.request_body.text
    assert "kept" in request_text and "gpt-4o" in request_text
    for secret in (key_like, "abc.def.ghi", issued.secret, "correct horse"):
        assert secret not in request_text
        assert secret not in entry.response_body.text
    assert request_text.count("[REDACTED]") == 4
    assert entry.response_body.text == created.text.replace(key_like, "[REDACTED]").replace(
        "abc.def.ghi", "[REDACTED]"
    ).replace(issued.secret, "[REDACTED]").replace("correct horse", "[REDACTED]")
    assert not entry.request_body.truncated and not entry.response_body.truncated

    set_logging(admin, org.id, FULL, max_body_bytes=40)
    listed = client.beta.assistants.with_raw_response.list()
    (cut,) = logged(admin, listed.headers["x-prism-request-id"])
    assert cut.response_body.truncated
    assert cut.response_body.size_bytes == len(listed.content)
    assert cut.response_body.text == listed.text[:40]


def test_streams_are_logged_when_they_end_with_their_events(
    admin: AdminClient, issue_key: IssueKey, sdk: Sdk
) -> None:
    org, issued = issue_key()
    set_logging(admin, org.id, FULL, max_body_bytes=1_048_576)
    client = sdk(issued.secret)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    with client.beta.threads.runs.with_streaming_response.create(
        thread_id=thread.id, assistant_id=assistant.id, stream=True
    ) as stream:
        body = stream.read()
        request_id = stream.headers["x-prism-request-id"]

    (entry,) = logged(admin, request_id)
    assert entry.response_body.content_type.startswith("text/event-stream")
    assert entry.response_body.size_bytes == len(body)
    assert "event: thread.run.completed" in entry.response_body.text
    assert thread.id in entry.response_body.ids
    # The run's charge, as the stream's closing cost comment told the client.
    cost = re.search(rb"^: x-prism-cost (\d+\.\d{6})$", body, re.MULTILINE)
    assert cost is not None
    assert entry.cost_usd == pytest.approx(float(cost[1])) and entry.cost_usd > 0
    assert (entry.model, entry.unpriced_model) == ("gpt-4o", False)
    assert entry.input_tokens > 0 and entry.output_tokens > 0


def test_request_logging_is_validated(admin: AdminClient, issue_key: IssueKey) -> None:
    org, _ = issue_key()
    with pytest.raises(grpc.RpcError) as refused:
        set_logging(admin, org.id, FULL, max_body_bytes=1_048_577)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_body_bytes" in refused.value.details()
    with pytest.raises(grpc.RpcError) as negative:
        set_logging(admin, org.id, FULL, max_body_bytes=-1)
    assert negative.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    set_logging(admin, org.id, METADATA)
    stored = admin.GetOrg(admin_pb2.GetOrgRequest(id=org.id)).request_logging
    assert (stored.bodies, stored.max_body_bytes) == (METADATA, 0)
    created = admin.CreateOrg(
        admin_pb2.CreateOrgRequest(
            org=admin_pb2.Org(
                request_logging=request_logging_pb2.RequestLogging(bodies=FULL, max_body_bytes=100)
            )
        )
    )
    assert created.request_logging.max_body_bytes == 100


def test_list_filters_and_pages(admin: AdminClient, issue_key: IssueKey, sdk: Sdk) -> None:
    org, first_key = issue_key()
    second_key = admin.CreateKey(admin_pb2.CreateKeyRequest(key=admin_pb2.Key(org_id=org.id)))
    first, second = sdk(first_key.secret), sdk(second_key.secret)
    started = datetime.now(UTC)
    ids = [first.beta.assistants.with_raw_response.list().headers["x-prism-request-id"]]
    ids += [second.beta.threads.with_raw_response.create().headers["x-prism-request-id"]]
    for _ in range(3):
        with pytest.raises(openai.NotFoundError) as missing:
            first.beta.threads.retrieve("thread_missing")
        ids.append(request_id_of(missing.value))
    logged(admin, *ids)

    # From when the test started: older entries (the suite's thousands) would spend a page's
    # scan budget before the log's start, ending the listing with a short page and an empty one.
    since = timestamp_pb2.Timestamp()
    since.FromDatetime(started - timedelta(seconds=1))
    pages = []
    token = ""
    while True:
        page = admin.ListRequestLogs(
            admin_pb2.ListRequestLogsRequest(
                org_id=org.id, start_time=since, page_size=2, page_token=token
            )
        )
        pages.append([entry.request_id for entry in page.logs])
        token = page.next_page_token
        if not token:
            break
    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[:1]]

    def found(**filters: Any) -> list[str]:
        return [entry.request_id for entry in org_logs(admin, org_id=org.id, **filters)]

    assert found(key_id=second_key.key.id) == [ids[1]]
    assert found(status=404) == ids[4:1:-1]
    assert found(route="GET /v1/threads/{thread_id}") == ids[4:1:-1]
    assert found(route="POST /v1/threads", key_id=first_key.key.id) == []
    later = timestamp_pb2.Timestamp()
    later.FromDatetime(datetime.now(UTC) + timedelta(minutes=1))
    earlier = timestamp_pb2.Timestamp()
    earlier.FromDatetime(started - timedelta(minutes=1))
    assert found(start_time=later) == []
    assert found(end_time=earlier) == []
    assert found(start_time=earlier, end_time=later) == ids[::-1]


@pytest.mark.parametrize(
    ("request_fields", "says"),
    [
        ({"page_size": 1001}, "page_size"),
        ({"page_size": -1}, "page_size"),
        ({"page_token": "garbage!"}, "page_token"),
        ({"status": -5}, "status"),
    ],
)
def test_bad_list_requests_are_invalid_arguments(
    admin: AdminClient, request_fields: dict[str, Any], says: str
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        admin.ListRequestLogs(admin_pb2.ListRequestLogsRequest(**request_fields))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in refused.value.details()


def test_a_token_from_other_filters_is_refused(admin: AdminClient, client: openai.OpenAI) -> None:
    for _ in range(2):
        client.beta.assistants.list()
    time.sleep(0.5)
    page = admin.ListRequestLogs(admin_pb2.ListRequestLogsRequest(page_size=1))
    assert page.next_page_token
    with pytest.raises(grpc.RpcError) as refused:
        admin.ListRequestLogs(
            admin_pb2.ListRequestLogsRequest(page_token=page.next_page_token, status=404)
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_an_unknown_request_is_not_found(admin: AdminClient) -> None:
    with pytest.raises(grpc.RpcError) as missing:
        admin.GetRequestLog(admin_pb2.GetRequestLogRequest(request_id="req_" + "0" * 32))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def _json_lines(dataplane: DataPlane) -> list[dict[str, Any]]:
    lines = []
    for line in dataplane.process.log().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_each_request_is_one_json_line_on_stdout(
    admin: AdminClient, dataplane: DataPlane, client: openai.OpenAI
) -> None:
    ids = [
        client.beta.assistants.with_raw_response.list().headers["x-prism-request-id"]
        for _ in range(3)
    ]
    (entry,) = logged(admin, ids[0])

    deadline = time.monotonic() + PATIENCE_SECONDS
    while not all(any(line["request_id"] == i for line in _json_lines(dataplane)) for i in ids):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    lines = [line for line in _json_lines(dataplane) if line["request_id"] in ids]
    assert sorted(line["request_id"] for line in lines) == sorted(ids)
    first = next(line for line in lines if line["request_id"] == ids[0])
    assert first["org_id"] == entry.org_id and first["route"] == "GET /v1/assistants"
    assert first["status"] == 200 and first["trace_id"] == entry.trace_id


def test_the_json_line_is_the_request_log_message_with_every_field(
    dataplane: DataPlane, client: openai.OpenAI
) -> None:
    response = client.beta.assistants.with_raw_response.list(
        extra_headers={"x-prism-metadata": json.dumps({"ticket": 42, "ratio": 0.5})}
    )
    request_id = response.headers["x-prism-request-id"]
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not any(line["request_id"] == request_id for line in _json_lines(dataplane)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (line,) = [line for line in _json_lines(dataplane) if line["request_id"] == request_id]

    # prism.v1.RequestLog is the one schema: no field the message lacks (strict parse), and
    # every field it has but the bodies, which this org does not log.
    parsed = json_format.ParseDict(line, admin_pb2.RequestLog())
    bodies = {"request_body", "response_body"}
    assert set(line) == {field.name for field in parsed.DESCRIPTOR.fields} - bodies
    # Counts stay JSON integers, the caller's metadata as it sent it.
    assert all(type(line[name]) is int for name in ("status", "input_tokens", "output_tokens"))
    assert line["metadata"] == {"ticket": 42, "ratio": 0.5}
    assert type(line["metadata"]["ticket"]) is int
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["time"])


@dataclass
class PrivateLog:
    """A data plane whose log goes to a Redis of its own, read by a control plane of its own."""

    redis: redis.Redis
    dataplane: DataPlane
    reader: AdminClient


@pytest.fixture
def private_log(
    workdir: Path,
    logs: Path,
    controlplane: ControlPlane,
    start_controlplane: Callable[..., ControlPlane],
    start_dataplane: Callable[..., DataPlane],
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., PrivateLog]]:
    made: list[tuple[stack.Process, redis.Redis, grpc.Channel]] = []

    def make(**env: str) -> PrivateLog:
        port = stack.free_port()
        process = stack.start_redis(port, workdir / f"log-redis-{port}", logs)
        url = f"redis://127.0.0.1:{port}/0"
        reader = start_controlplane(REDIS_URL=url)
        # Keys and orgs stay on the shared Redis of the session's control plane.
        dataplane = start_dataplane(controlplane.addr, REDIS_URL=url, **env)
        client = redis.Redis.from_url(url)
        channel = grpc.insecure_channel(reader.addr)
        made.append((process, client, channel))
        return PrivateLog(client, dataplane, AdminClient(channel, reader.admin_token))

    yield make
    for process, client, channel in made:
        channel.close()
        client.close()
        process.stop()


def _healthz(dataplane: DataPlane, count: int) -> list[str]:
    with httpx.Client(base_url=dataplane.base) as http:
        return [http.get("/healthz").headers["x-prism-request-id"] for _ in range(count)]


def test_retention_by_count(private_log: Callable[..., PrivateLog]) -> None:
    own = private_log(PRISM_LOG_MAX_RECORDS="100")
    ids = _healthz(own.dataplane, 300)
    logged(own.reader, ids[-1])

    entries = org_logs(own.reader)
    # `MAXLEN ~`: about the newest 100, never fewer, trimmed by whole stream nodes.
    assert 100 <= len(entries) < 200
    assert [entry.request_id for entry in entries] == ids[::-1][: len(entries)]
    assert entries[0].route == "GET /healthz"
    with pytest.raises(grpc.RpcError) as aged_out:
        own.reader.GetRequestLog(admin_pb2.GetRequestLogRequest(request_id=ids[0]))
    assert aged_out.value.code() == grpc.StatusCode.NOT_FOUND


def test_the_log_keeps_a_bounded_number_of_keys_and_index_entries(
    private_log: Callable[..., PrivateLog],
) -> None:
    own = private_log(PRISM_LOG_MAX_RECORDS="50")
    warm_up = _healthz(own.dataplane, 100)
    logged(own.reader, warm_up[-1])
    keys = own.redis.dbsize()

    ids = _healthz(own.dataplane, 1000)
    logged(own.reader, ids[-1])

    # 1,000 more requests add no key: the index is one hash and one list, not a key each.
    assert own.redis.dbsize() == keys
    # The index holds what the stream holds (about the newest 50), no more.
    kept = own.redis.xlen(redis_keys.REQUEST_LOG)
    assert 50 <= kept < 200
    assert own.redis.hlen(redis_keys.REQUEST_LOG_INDEX) == kept
    assert own.redis.llen(redis_keys.REQUEST_LOG_ORDER) == kept
    # Every entry the log lists can be fetched by its request id.
    listed = [entry.request_id for entry in org_logs(own.reader)]
    assert listed == ids[::-1][:kept]
    assert [entry.request_id for entry in logged(own.reader, *listed)] == listed


def test_reading_the_log_while_its_redis_is_gone_is_unavailable(
    private_log: Callable[..., PrivateLog],
) -> None:
    own = private_log()
    (request_id,) = _healthz(own.dataplane, 1)
    logged(own.reader, request_id)
    own.redis.shutdown(nosave=True)

    for read in (
        lambda: own.reader.GetRequestLog(admin_pb2.GetRequestLogRequest(request_id=request_id)),
        lambda: own.reader.ListRequestLogs(admin_pb2.ListRequestLogsRequest()),
    ):
        with pytest.raises(grpc.RpcError) as unavailable:
            read()
        assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "REDIS_URL" in unavailable.value.details()


def test_retention_by_age(private_log: Callable[..., PrivateLog]) -> None:
    # 1.8 seconds.
    own = private_log(PRISM_LOG_RETENTION_HOURS="0.0005")
    old = _healthz(own.dataplane, 20)
    logged(own.reader, old[-1])
    time.sleep(2.5)
    new = _healthz(own.dataplane, 20)
    logged(own.reader, new[-1])

    listed = [entry.request_id for entry in org_logs(own.reader)]
    assert set(new) <= set(listed)
    # Trimmed by whole stream nodes: the oldest are gone, a few of the old may remain, and
    # what is listed can be fetched, what is not cannot.
    assert old[0] not in listed
    assert len(logged(own.reader, *listed)) == len(listed)
    with pytest.raises(grpc.RpcError) as aged_out:
        own.reader.GetRequestLog(admin_pb2.GetRequestLogRequest(request_id=old[0]))
    assert aged_out.value.code() == grpc.StatusCode.NOT_FOUND


def test_no_entry_is_lost_while_redis_refuses_writes(
    private_log: Callable[..., PrivateLog], issue_key: IssueKey, sdk: Sdk
) -> None:
    own = private_log()
    _, issued = issue_key()
    client = sdk(issued.secret, base_url=own.dataplane.url)
    # At its memory limit with no eviction, Redis refuses every write.
    before = own.redis.xlen(redis_keys.REQUEST_LOG)
    own.redis.config_set("maxmemory-policy", "noeviction")
    own.redis.config_set("maxmemory", "1")
    try:
        started = time.monotonic()
        ids = [
            client.beta.assistants.with_raw_response.list().headers["x-prism-request-id"]
            for _ in range(20)
        ]
        # The responses never waited for the log.
        assert time.monotonic() - started < 5
        time.sleep(1)
        assert own.redis.xlen(redis_keys.REQUEST_LOG) == before
    finally:
        own.redis.config_set("maxmemory", "0")

    entries = logged(own.reader, *ids)
    assert [entry.status for entry in entries] == [200] * 20
    assert "Redis refused" in own.dataplane.process.log()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"PRISM_LOG_MAX_RECORDS": "0"}, ["PRISM_LOG_MAX_RECORDS", "whole number"]),
        ({"PRISM_LOG_MAX_RECORDS": "lots"}, ["PRISM_LOG_MAX_RECORDS", "whole number"]),
        ({"PRISM_LOG_RETENTION_HOURS": "-1"}, ["PRISM_LOG_RETENTION_HOURS", "positive"]),
    ],
    ids=["no-records", "bad-records", "bad-retention"],
)
def test_a_bad_log_setting_stops_the_start_with_one_line(
    redis_url: str, change: dict[str, str], says: list[str]
) -> None:
    settings = {
        "REDIS_URL": redis_url,
        "PRISM_HTTP_LISTEN": f"127.0.0.1:{stack.free_port()}",
        "PRISM_CONTROLPLANE_ADDR": "127.0.0.1:1",
        "PRISM_DATAPLANE_TOKEN": DATAPLANE_TOKEN,
    }
    result = start_and_fail("dataplane", settings | change)

    assert_one_clear_line(result, "dataplane", 2, "configuration error", *says)
