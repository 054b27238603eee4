"""Neither a client's Prism key nor the upstream's key appears in anything the gateway
writes or sends back, on success or failure: responses, the processes' logs (the request
log's stdout lines included), every value in Redis (the request log's stream included, with
full body logging on), and every Admin response."""

import time

import grpc
import openai
import pytest
from google.protobuf import field_mask_pb2

from prism import redis_keys
from prism.v1 import admin_pb2, request_logging_pb2
from tests.conftest import AdminClient, ControlPlane, DataPlane, IssueKey, Upstream
from tests.test_admin import redis_dump

# Bounds a wait for the request log, written off the response path.
PATIENCE_SECONDS = 15


def test_no_secret_in_responses_logs_redis_or_admin_answers(
    dataplane: DataPlane,
    controlplane: ControlPlane,
    shared_upstream: Upstream,
    issue_key: IssueKey,
    admin: AdminClient,
    redis_url: str,
) -> None:
    org, issued = issue_key(allowed_models=["gpt-4o"])
    # The most the request log ever keeps: every body, whole.
    admin.UpdateOrg(
        admin_pb2.UpdateOrgRequest(
            org=admin_pb2.Org(
                id=org.id,
                request_logging=request_logging_pb2.RequestLogging(
                    bodies=request_logging_pb2.BODY_LOGGING_FULL, max_body_bytes=1_048_576
                ),
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["request_logging"]),
        )
    )
    client = openai.OpenAI(base_url=dataplane.url, api_key=issued.secret, max_retries=0)
    seen: list[str] = []
    request_ids: list[str] = []

    # A caller pasting keys where they do not belong: in a body, the metadata header and
    # the trace id.
    raw = client.beta.assistants.with_raw_response.create(
        model="gpt-4o",
        instructions=f"My keys are {issued.secret} and {shared_upstream.api_key}.",
        metadata={"api_key": shared_upstream.api_key},
        extra_headers={
            "x-prism-metadata": f'{{"token": "{issued.secret}"}}',
            "x-prism-trace-id": issued.secret,
        },
    )
    # What the caller sent comes back to it alone (the assistant it created, the trace id it
    # chose), so this response is not scanned; the log keeps all of it, redacted.
    assert raw.headers["x-prism-trace-id"] == issued.secret
    request_ids.append(raw.headers["x-prism-request-id"])
    plain = client.beta.assistants.with_raw_response.create(model="gpt-4o")
    seen += [str(plain.headers), plain.text]
    request_ids.append(plain.headers["x-prism-request-id"])
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.beta.assistants.create(model="gpt-4")
    seen += [str(denied.value.response.headers), denied.value.response.text]
    request_ids.append(denied.value.response.headers["x-prism-request-id"])
    shared_upstream.add_fault(method="GET", path="/v1/assistants", status=500)
    with pytest.raises(openai.InternalServerError) as failed:
        client.beta.assistants.list()
    seen += [str(failed.value.response.headers), failed.value.response.text]
    request_ids.append(failed.value.response.headers["x-prism-request-id"])
    impostor = issued.secret[:-4] + "AAAA"
    with pytest.raises(openai.AuthenticationError) as refused:
        openai.OpenAI(base_url=dataplane.url, api_key=impostor, max_retries=0).files.list()
    seen += [str(refused.value.response.headers), refused.value.response.text]
    request_ids.append(refused.value.response.headers["x-prism-request-id"])

    admin_answers = [str(answer) for answer in _logged(admin, request_ids)]
    admin_answers.append(str(admin.ListRequestLogs(admin_pb2.ListRequestLogsRequest())))
    admin_answers.append(str(admin.GetOrg(admin_pb2.GetOrgRequest(id=org.id))))
    admin_answers.append(str(admin.GetKey(admin_pb2.GetKeyRequest(id=issued.key.id))))
    admin_answers.append(str(admin.ListOrgs(admin_pb2.ListOrgsRequest(page_size=1000))))
    admin_answers.append(str(admin.ListKeys(admin_pb2.ListKeysRequest(page_size=1000))))

    written = "\n".join(
        [
            *seen,
            *admin_answers,
            dataplane.process.log(),
            controlplane.process.log(),
            # The engine is the upstream: it keeps what the caller sent, as OpenAI would.
            redis_dump(redis_url, skipped_prefix=redis_keys.ENGINE_PREFIX),
        ]
    )
    assert issued.key.id in written  # what is scanned does hold this workload
    for secret in (issued.secret, impostor, shared_upstream.api_key):
        assert secret not in written


def _logged(admin: AdminClient, request_ids: list[str]) -> list[admin_pb2.RequestLog]:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        try:
            return [
                admin.GetRequestLog(admin_pb2.GetRequestLogRequest(request_id=request_id))
                for request_id in request_ids
            ]
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
            assert time.monotonic() < deadline, "the workload was not logged"
            time.sleep(0.05)
